import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PAGE_SIZE } from "../../src/index.js";
import { connectTcp } from "../../src/node.js";
import { createMigrationPair } from "../support/migration-pair.js";
import { CLI } from "../support/receiver.js";

const dir = mkdtempSync(join(tmpdir(), "pagewire-tls-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("TLS transport", () => {
  it("migrates over TLS with a self-signed certificate; a client that does not trust it fails to connect", async () => {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-days",
        "1",
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem"),
      ],
      { stdio: "ignore" },
    );
    const cert = readFileSync(join(dir, "cert.pem"));
    const key = readFileSync(join(dir, "key.pem"));
    const pair = await createMigrationPair({
      pages: 256,
      kernels: "one",
      transport: "tcp",
      tls: { server: { cert, key }, client: { ca: cert, servername: "localhost" } },
    });
    pair.src.bytes().fill(0xab, 0, 64 * PAGE_SIZE);
    const { report } = await pair.run();
    expect(report.status).toBe("completed");
    expect(Buffer.compare(pair.dst.bytes(), pair.src.bytes())).toBe(0);
    await expect(
      connectTcp("127.0.0.1", pair.listener!.port, { tls: { servername: "localhost" } }),
    ).rejects.toMatchObject({ code: "CONNECT_FAILED" });
  });
});

describe("send / receive usage", () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8" });
  it("usage errors exit 2 with one line", () => {
    for (const args of [
      ["receive", "--listen", "127.0.0.1:0"],
      ["send", "--memory", "x", "--to", "nohost"],
      ["send", "--memory", "x", "--to", "127.0.0.1:1", "--mode", "warp"],
      ["receive", "--bogus"],
    ]) {
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
