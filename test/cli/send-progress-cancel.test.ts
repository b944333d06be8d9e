// send / receive as a user runs them: --progress=json prints one JSON event per line on
// stderr while the migration runs (stdout keeps the report); ^C during send cancels before
// the decision: the writer paused with --pid is resumed, the receiver discards, nothing
// is written.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli, startReceiver } from "../support/receiver.js";

const dir = mkdtempSync(join(tmpdir(), "pagewire-progress-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function ramFile(name: string, pages: number): string {
  const file = join(dir, name);
  const b = Buffer.alloc(pages * 4096);
  for (let i = 0; i < b.length; i += 8) b.writeUInt32LE((i * 2654435761) >>> 0, i); // incompressible enough
  writeFileSync(file, b);
  return file;
}

/** `pagewire send --memory MEM --to 127.0.0.1:PORT …extra`. */
const send = (port: number, mem: string, extra: string[]) =>
  runCli(["send", "--memory", mem, "--to", `127.0.0.1:${port}`, ...extra]);

const jsonLines = (text: string) =>
  text
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l));

describe("progress and cancel on the command line", () => {
  it("--progress=json: events on stderr during the run, the report alone on stdout", async () => {
    const mem = ramFile("ram.img", 4096);
    const out = join(dir, "out.img");
    const rx = await startReceiver(["--out", out, "--insecure", "--progress", "json", "--json"]);
    const tx = send(rx.port, mem, [
      "--bandwidth",
      "20MB/s", // 16 MiB: ~0.8 s, several progress events
      "--progress",
      "json",
      "--json",
    ]);
    const [s, r] = await Promise.all([tx.exited, rx.exited]);
    expect(s.code, s.stderr).toBe(0);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(s.stdout); // stdout: the report only
    const events = jsonLines(s.stderr);
    const kinds = events.map((e) => e.event);
    expect(kinds[0]).toBe("handshake");
    expect(kinds.at(-1)).toBe("activate");
    const progress = events.filter((e) => e.event === "progress");
    expect(progress.length).toBeGreaterThan(2);
    const mid = progress.filter((e) => e.phase === "precopy" && e.transferred > 0 && e.remaining > 0);
    expect(mid.length).toBeGreaterThan(0); // progress while pages were still to send
    expect(progress.at(-1).transferred).toBe(report.ram.transferred);
    const rxEvents = jsonLines(r.stderr).map((e) => e.event);
    expect(rxEvents).toContain("progress");
    expect(rxEvents).toContain("prepared");
    expect(JSON.parse(r.stdout).seconds).toBeGreaterThan(0);
  });

  it("without --progress and not on a terminal: nothing but the result", async () => {
    const mem = ramFile("quiet.img", 256);
    const out = join(dir, "quiet-out.img");
    const rx = await startReceiver(["--out", out, "--insecure"]);
    const tx = send(rx.port, mem, []);
    const [s, r] = await Promise.all([tx.exited, rx.exited]);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stderr).toBe("");
    expect(r.stdout).toMatch(/^committed .* received in \d+\.\d\d s \(.*\/s\)/);
  });

  it("^C during send: CANCELLED, the paused writer resumed, the receiver discards", async () => {
    const mem = ramFile("cancel.img", 8192);
    const out = join(dir, "cancel-out.img");
    // a process standing for the guest: send stops and continues it
    const guest = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
    const rx = await startReceiver(["--out", out, "--insecure"]);
    const tx = send(rx.port, mem, [
      "--bandwidth",
      "4MB/s", // 32 MiB: ~8 s, ^C comes long before the end
      "--pid",
      String(guest.pid),
      "--progress",
      "json",
    ]);
    // once pages flow, ^C
    await new Promise<void>((resolve) => {
      const onData = () => {
        if (!/"event":"progress".*"transferred":[1-9]\d{5,}/.test(tx.stderr)) return;
        tx.child.stderr!.off("data", onData);
        resolve();
      };
      tx.child.stderr!.on("data", onData);
    });
    tx.kill("SIGINT");
    const [s, r] = await Promise.all([tx.exited, rx.exited]);
    expect(s.code).toBe(1);
    expect(s.stderr).toMatch(/SIGINT: cancelling/);
    expect(s.stderr).toMatch(/CANCELLED/);
    expect(jsonLines(s.stderr).map((e) => e.event)).toContain("abort");
    expect(r.code).toBe(1);
    expect(existsSync(out)).toBe(false);
    // the guest was never stopped for good: it still runs (SIGCONT'd if it was stopped)
    const state = (await import("node:fs")).readFileSync(`/proc/${guest.pid}/stat`, "utf8").split(" ")[2];
    expect(state).not.toBe("T");
    guest.kill("SIGKILL");
  });
});

describe("send --mode auto", () => {
  it("predicts each mode by replaying its probe in the simulator, and says so in the report", async () => {
    const mem = ramFile("auto.img", 2048);
    const out = join(dir, "auto-out.img");
    // a writer dirtying pages until send stops it (--pid) at the pause (each pass over the
    // pages writes new bytes: a page's offset fixes i mod 2048)
    const writer = spawn(
      process.execPath,
      [
        "-e",
        `const fs = require("fs"); const fd = fs.openSync(${JSON.stringify(mem)}, "r+"); const b = Buffer.alloc(64);
         let i = 0; setInterval(() => { for (let w = 0; w < 50; w++) { b.fill((i >> 11) & 255); fs.writeSync(fd, b, 0, 64, ((i++ * 7919) % 2048) * 4096); } }, 5);`,
      ],
      { stdio: "ignore" },
    );
    const rx = await startReceiver(["--out", out, "--insecure"]);
    const tx = send(rx.port, mem, ["--mode", "auto", "--bandwidth", "20MB/s", "--pid", String(writer.pid), "--json"]);
    const [s, r] = await Promise.all([tx.exited, rx.exited]);
    writer.kill("SIGKILL");
    expect(s.code, s.stderr).toBe(0);
    expect(r.code, r.stderr).toBe(0);
    const auto = JSON.parse(s.stdout).decisions.find((d: { kind: string }) => d.kind === "auto");
    expect(auto.inputs.dirtyPagesPerSecond).toBeGreaterThan(0);
    for (const m of ["precopy", "hybrid", "postcopy"]) expect(auto.inputs[`${m}.totalTimeMs`]).toBeGreaterThan(0);
  });
});
