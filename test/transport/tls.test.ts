import { execFileSync, spawnSync } from "node:child_process";
import { randomFillSync } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PAGE_SIZE } from "../../src/index.js";
import { connectTcp, TcpListener } from "../../src/node.js";
import type { TcpTransport } from "../../src/transport/tcp.js";
import { createMigrationPair } from "../support/migration-pair.js";
import { CLI } from "../support/receiver.js";
import { checkFrame, EDGE_LENGTHS, growingSink, sendFrames } from "./frames.js";

const dir = mkdtempSync(join(tmpdir(), "pagewire-tls-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A self-signed certificate for localhost / 127.0.0.1 (made once). */
let made: { cert: Buffer; key: Buffer } | null = null;
function selfSigned(): { cert: Buffer; key: Buffer } {
  if (made) return made;
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
  made = { cert: readFileSync(join(dir, "cert.pem")), key: readFileSync(join(dir, "key.pem")) };
  return made;
}

describe("TLS transport", () => {
  it("migrates over TLS with a self-signed certificate; a client that does not trust it fails to connect", async () => {
    const { cert, key } = selfSigned();
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

  it("page frames lent from shared kernel memory (sendBorrowed) cross TLS intact", async () => {
    const { cert, key } = selfSigned();
    const pair = await createMigrationPair({
      pages: 4096,
      shared: true,
      transport: "tcp",
      codecs: { lz: false },
      tls: { server: { cert, key }, client: { ca: cert, servername: "localhost" } },
    });
    randomFillSync(pair.src.bytes()); // 16 MiB of raw pages: a dozen 1 MiB frames, sent from kernel memory
    const t = pair.sourceTransport as TcpTransport;
    const lend = t.sendBorrowed.bind(t);
    const lent = { count: 0 };
    t.sendBorrowed = (frame, release) => (lent.count++, lend(frame, release));
    const { report } = await pair.run();
    expect(report.status).toBe("completed");
    expect(lent.count).toBeGreaterThanOrEqual(10);
    expect(Buffer.compare(pair.dst.bytes(), pair.src.bytes())).toBe(0);
  });

  it("frames of many sizes cross TLS intact and in order ('data' events), send buffers reused", async () => {
    const { cert, key } = selfSigned();
    const l = await TcpListener.listen("127.0.0.1", 0, { tls: { cert, key } });
    const [c, s] = await Promise.all([
      connectTcp("127.0.0.1", l.port, { tls: { ca: cert, servername: "localhost" } }),
      l.accept(),
    ]);
    l.close();
    try {
      expect(s.stats.readMode).toBe("data");
      expect(c.stats.readMode).toBe("data");
      const lengths = [...EDGE_LENGTHS, ...EDGE_LENGTHS, ...EDGE_LENGTHS];
      const sink = growingSink();
      const reader = (async () => {
        for (let n = 0; n < lengths.length; n++) {
          if (n % 2) checkFrame((await s.receive())!, n, lengths[n]);
          else {
            const size = (await s.receiveInto(sink.sink))!; // before sink.last(): the sink may grow
            checkFrame(sink.last().subarray(0, size), n, lengths[n]);
          }
        }
      })();
      const sender = (async () => {
        for (let round = 0; round < 3; round++) {
          await sendFrames(c, EDGE_LENGTHS, round * EDGE_LENGTHS.length);
          await new Promise((r) => setTimeout(r, 20)); // write callbacks give the buffers back
        }
      })();
      await Promise.all([sender, reader]);
      expect(c.stats.send.reuses).toBeGreaterThan(0);
    } finally {
      c.close();
      s.close();
    }
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
