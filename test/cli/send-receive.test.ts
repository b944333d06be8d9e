// pagewire send → pagewire receive over TCP, two processes, while a third process writes
// the RAM file in place for the first part of the migration.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { CLI, runCli, startReceiver } from "../support/receiver.js";

const RANDOM_JS = pathToFileURL(fileURLToPath(new URL("../../dist/util/random.js", import.meta.url))).href;
const dir = mkdtempSync(join(tmpdir(), "pagewire-send-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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
    // a writer process writing the file in place, in real time (it must run concurrently
    // with send), but seeded and bounded: 400 batches of 64 writes of 64 bytes, at most one
    // batch per ms, from seededRandom(17): the final file does not depend on the timing
    const writer = spawn(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `
      import fs from "node:fs"; import { seededRandom } from ${JSON.stringify(RANDOM_JS)};
      const r = seededRandom(17); const fd = fs.openSync(${JSON.stringify(mem)}, "r+");
      let n = 0; const b = Buffer.alloc(64);
      for (let batch = 0; batch < 400; batch++) {
        for (let w = 0; w < 64; w++, n++) { for (let i = 0; i < 64; i++) b[i] = (r() * 256) | 0;
          fs.writeSync(fd, b, 0, 64, Math.floor(r() * ${pages}) * 4096 + 128); }
        const t = Date.now(); while (Date.now() - t < 1); }
      fs.closeSync(fd); console.log(n);`,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let writes = "";
    writer.stdout.on("data", (d) => (writes += d));
    const writerDone = new Promise((resolve) => writer.on("exit", resolve));
    const rx = await startReceiver(["--out", out, "--key", key, "--json"]);
    // the writer stops after about 400 ms; pre-copy keeps going until the remainder fits the downtime
    const tx = runCli([
      "send",
      "--memory",
      mem,
      "--to",
      `127.0.0.1:${rx.port}`,
      "--key",
      key,
      "--bandwidth",
      "40MB/s",
      "--downtime-limit",
      "50ms",
      "--max-rounds",
      "60",
      "--json",
    ]);
    const [s, r] = await Promise.all([tx.exited, rx.exited]);
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
    const rx = await startReceiver(["--out", out, "--key", join(dir, "k2")]);
    const s = spawnSync(
      process.execPath,
      [CLI, "send", "--memory", mem, "--to", `127.0.0.1:${rx.port}`, "--key", join(dir, "k1")],
      { encoding: "utf8" },
    );
    expect(s.status).toBe(1);
    // the receiver refuses that sender and keeps listening for one with the right key
    while (!/refused: .*HMAC/.test(rx.stderr)) await new Promise((resolve) => setTimeout(resolve, 10));
    rx.kill("SIGTERM");
    const r = await rx.exited;
    expect(r.code).toBe(143);
    expect(() => readFileSync(out)).toThrow();
  });
});
