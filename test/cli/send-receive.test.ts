// pagewire send → pagewire receive over TCP, two processes, while a third process writes
// the RAM file in place for the first part of the migration.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));
const cli = join(root, "dist/cli/main.js");
const dir = mkdtempSync(join(tmpdir(), "pagewire-send-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[]) {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on("exit", (code) => resolve({ code, stdout, stderr })));
  return { child, done, stderr: () => stderr };
}

describe("pagewire send / receive", () => {
  it("migrates a RAM file another process is writing; the received file equals the final source; keyed", async () => {
    const mem = join(dir, "ram.img");
    const out = join(dir, "received.img");
    const key = join(dir, "psk");
    writeFileSync(key, "a pre-shared key, 32 bytes long!");
    const pages = 4096; // 16 MiB
    const init = Buffer.alloc(pages * 4096);
    for (let p = 0; p < pages; p += 3) init.fill(p & 0xff, p * 4096, p * 4096 + 2048);
    writeFileSync(mem, init);
    // a writer process: random in-place writes for 400 ms, then it stops
    const writer = spawn(process.execPath, ["-e", `
      const fs = require("fs"); const fd = fs.openSync(${JSON.stringify(mem)}, "r+");
      const end = Date.now() + 400; let n = 0; const b = Buffer.alloc(64);
      while (Date.now() < end) { for (let i = 0; i < 64; i++) b[i] = (Math.random() * 256) | 0;
        fs.writeSync(fd, b, 0, 64, Math.floor(Math.random() * ${pages}) * 4096 + 128); n++; }
      fs.closeSync(fd); console.log(n);`], { stdio: ["ignore", "pipe", "inherit"] });
    let writes = "";
    writer.stdout.on("data", (d) => (writes += d));
    const writerDone = new Promise((resolve) => writer.on("exit", resolve));
    const rx = run(["receive", "--listen", "127.0.0.1:0", "--out", out, "--key", key, "--json"]);
    const port = await new Promise<number>((resolve, reject) => {
      const t = setInterval(() => {
        const m = /listening on [^:]+:(\d+)/.exec(rx.stderr());
        if (m) { clearInterval(t); resolve(Number(m[1])); }
      }, 10);
      rx.child.on("exit", () => { clearInterval(t); reject(new Error(rx.stderr())); });
    });
    // the writer stops after 400 ms; pre-copy keeps going until the remainder fits the downtime
    const tx = run(["send", "--memory", mem, "--to", `127.0.0.1:${port}`, "--key", key, "--bandwidth", "40", "--downtime", "50", "--max-rounds", "60", "--json"]);
    const [s, r] = await Promise.all([tx.done, rx.done]);
    await writerDone;
    expect(s.code, s.stderr).toBe(0);
    expect(r.code, r.stderr).toBe(0);
    expect(Number(writes)).toBeGreaterThan(100);
    const report = JSON.parse(s.stdout);
    expect(report.status).toBe("completed");
    expect(report.rounds.length).toBeGreaterThan(1);
    expect(Buffer.compare(readFileSync(out), readFileSync(mem))).toBe(0);
  });

  it("a receiver with another key refuses, and leaves no output file", async () => {
    const mem = join(dir, "small.img");
    writeFileSync(mem, Buffer.alloc(64 * 4096, 7));
    writeFileSync(join(dir, "k1"), "first key first key first key!!");
    writeFileSync(join(dir, "k2"), "other key other key other key!!");
    const out = join(dir, "refused.img");
    const rx = run(["receive", "--listen", "127.0.0.1:0", "--out", out, "--key", join(dir, "k2")]);
    const port = await new Promise<number>((resolve) => {
      const t = setInterval(() => { const m = /:(\d+)$/m.exec(rx.stderr()); if (m) { clearInterval(t); resolve(Number(m[1])); } }, 10);
    });
    const s = spawnSync(process.execPath, [cli, "send", "--memory", mem, "--to", `127.0.0.1:${port}`, "--key", join(dir, "k1")], { encoding: "utf8" });
    expect(s.status).toBe(1);
    // the receiver refuses that sender and keeps listening for one with the right key
    while (!/refused: .*HMAC/.test(rx.stderr())) await new Promise((resolve) => setTimeout(resolve, 10));
    rx.child.kill("SIGTERM");
    const r = await rx.done;
    expect(r.code).toBe(143);
    expect(() => readFileSync(out)).toThrow();
  });
});
