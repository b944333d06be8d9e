import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { createKernel, MigrationDestination, MigrationSource, WasmGuestMemory, PAGE_SIZE } from "../../src/index.js";
import { connectTcp, TcpListener } from "../../src/node.js";

const dir = mkdtempSync(join(tmpdir(), "pagewire-tls-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const root = fileURLToPath(new URL("../..", import.meta.url));

describe("TLS transport", () => {
  it("migrates over TLS with a self-signed certificate; a client that does not trust it fails to connect", async () => {
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days", "1", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")], { stdio: "ignore" });
    const cert = readFileSync(join(dir, "cert.pem"));
    const key = readFileSync(join(dir, "key.pem"));
    const k = await createKernel();
    const src = new WasmGuestMemory(k, 256);
    src.bytes().fill(0xab, 0, 64 * PAGE_SIZE);
    const dst = new WasmGuestMemory(k, 256);
    const listener = await TcpListener.listen("127.0.0.1", 0, { tls: { cert, key } });
    const accepted = listener.accept();
    const client = await connectTcp("127.0.0.1", listener.port, { tls: { ca: cert, servername: "localhost" } });
    const server = await accepted;
    const [report] = await Promise.all([
      new MigrationSource({ kernel: k, memory: src, dirtyLog: src.dirtyLog(), transport: client }).migrate(),
      new MigrationDestination({ kernel: k, memory: dst, transport: server }).receive(),
    ]);
    expect(report.status).toBe("completed");
    expect(Buffer.compare(dst.bytes(), src.bytes())).toBe(0);
    await expect(connectTcp("127.0.0.1", listener.port, { tls: { servername: "localhost" } })).rejects.toMatchObject({ code: "CONNECT_FAILED" });
    listener.close();
  });
});

describe("send / receive usage", () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, [join(root, "dist/cli/main.js"), ...args], { encoding: "utf8" });
  it("usage errors exit 2 with one line", () => {
    for (const args of [["receive", "--listen", "127.0.0.1:0"], ["send", "--memory", "x", "--to", "nohost"], ["send", "--memory", "x", "--to", "127.0.0.1:1", "--mode", "warp"], ["receive", "--bogus"]]) {
      const r = cli(...args);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
  });
  it("a failure exits 1 with one line (nothing listening)", () => {
    const file = join(dir, "mem.img");
    execFileSync(process.execPath, ["-e", `require("fs").writeFileSync(${JSON.stringify(file)}, Buffer.alloc(8192))`]);
    const r = cli("send", "--memory", file, "--to", "127.0.0.1:1");
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/cannot connect/);
  });
});
