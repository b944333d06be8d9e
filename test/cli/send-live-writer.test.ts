// pagewire send on a RAM file that another process never stops writing: send pauses the
// writer with --pid (SIGSTOP/SIGCONT), --pause-cmd/--resume-cmd or --qmp (a fake QEMU
// monitor that stops and continues the writer); without any of them it refuses with
// MEMORY_CHANGED; a failure after the pause (receiver killed) starts the writer again.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, onTestFinished } from "vitest";
import { CLI, runCli, startReceiver } from "../support/receiver.js";

const dir = mkdtempSync(join(tmpdir(), "pagewire-live-"));
const key = join(dir, "psk");
writeFileSync(key, "a pre-shared key, 32 bytes long!");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;

/**
 * A RAM file of `pages` pages and a process that writes it forever: every millisecond
 * `perTick` writes of `size` random bytes at random pages (size 4096: whole pages, which
 * no codec shrinks). `keepMtime`: the file's mtime is set back after each tick, as with a
 * writer through a mapping; `sameBytes`: it writes the bytes already there (only the mtime
 * moves). Killed when the test ends.
 */
function liveWriter(
  pages: number,
  perTick: number,
  size: number,
  o: { keepMtime?: boolean; sameBytes?: boolean } = {},
): { file: string; writer: ChildProcess } {
  const file = join(dir, `ram${files++}.img`);
  writeFileSync(file, Buffer.alloc(pages * 4096, 0x5a));
  const writer = spawn(
    process.execPath,
    [
      "-e",
      `const fs = require("node:fs"), { randomFillSync, randomInt } = require("node:crypto");
       const fd = fs.openSync(${JSON.stringify(file)}, "r+"); const b = Buffer.alloc(${size}, 0x5a);
       const { atime, mtime } = fs.fstatSync(fd);
       setInterval(() => { for (let i = 0; i < ${perTick}; i++) { ${o.sameBytes ? "" : "randomFillSync(b);"}
         fs.writeSync(fd, b, 0, b.length, randomInt(${pages}) * 4096 + ${4096 - size}); }
         ${o.keepMtime ? "fs.futimesSync(fd, atime, mtime);" : ""} }, 1);`,
    ],
    { stdio: "ignore" },
  );
  onTestFinished(() => void writer.kill("SIGKILL"));
  return { file, writer };
}

/** The process state letter from /proc: T when stopped. */
function state(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** True when `file` changes within `ms`: its writer runs. */
async function changes(file: string, ms = 300): Promise<boolean> {
  const before = readFileSync(file);
  await sleep(ms);
  return Buffer.compare(before, readFileSync(file)) !== 0;
}

/** Waits until the writer has started writing `file` (node takes a moment to start). */
async function untilWriting(file: string): Promise<void> {
  for (let i = 0; !(await changes(file, 50)); i++) expect(i, "the writer never wrote").toBeLessThan(100);
}

function send(file: string, port: number, ...extra: string[]) {
  return runCli([
    "send",
    "--memory",
    file,
    "--to",
    `127.0.0.1:${port}`,
    "--key",
    key,
    "--downtime-limit",
    "50ms",
    "--max-rounds",
    "5",
    "--json",
    ...extra,
  ]);
}

describe("pagewire send on a file that another process keeps writing", () => {
  it.each<[string, { keepMtime?: boolean; sameBytes?: boolean }, RegExp]>([
    [
      "new bytes, mtime set back (a mapping)",
      { keepMtime: true },
      /\d+ pages changed between two scans after the pause/,
    ],
    ["the bytes already there (only mtime moves)", { sameBytes: true }, /it was modified after the pause \(mtime\)/],
  ])(
    "without a way to pause a writer of %s: MEMORY_CHANGED, saying what to pass; nothing committed",
    async (_, how, detail) => {
      const { file } = liveWriter(1024, 16, 64, how);
      await sleep(100);
      const out = join(dir, "refused.img");
      const rx = await startReceiver(["--out", out, "--key", key]);
      const [s, r] = await Promise.all([send(file, rx.port, "--bandwidth", "40MB/s").exited, rx.exited]);
      expect(s.code, s.stderr).toBe(1);
      expect(s.stderr).toMatch(/MEMORY_CHANGED: .*ram\d+\.img changed while it was being sent \(/);
      expect(s.stderr).toMatch(detail);
      expect(s.stderr).toMatch(/pass --pid PID, --qmp SOCKET or --pause-cmd CMD --resume-cmd CMD/);
      expect(s.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.code).toBe(1);
      expect(existsSync(out)).toBe(false);
      if (!how.sameBytes) expect(await changes(file)).toBe(true); // never paused
    },
  );

  it("--pid: SIGSTOP at the pause; the destination equals the file, and the writer stays stopped", async () => {
    const { file, writer } = liveWriter(1024, 16, 64);
    await untilWriting(file);
    const out = join(dir, "pid.img");
    const rx = await startReceiver(["--out", out, "--key", key]);
    const [s, r] = await Promise.all([
      send(file, rx.port, "--bandwidth", "40MB/s", "--pid", String(writer.pid)).exited,
      rx.exited,
    ]);
    expect(s.code, s.stderr).toBe(0);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(s.stdout);
    expect(report.status).toBe("completed");
    // written during the migration: pages dirtied after round 0
    expect(report.rounds.slice(1).reduce((n: number, r: { dirtied: number }) => n + r.dirtied, 0)).toBeGreaterThan(0);
    expect(s.stderr).toMatch(new RegExp(`paused process ${writer.pid} \\(SIGSTOP\\)`));
    expect(s.stderr).toMatch(/stays stopped \(SIGSTOP\): the destination owns the guest now/);
    expect(state(writer.pid!)).toBe("T");
    expect(await changes(file)).toBe(false);
    expect(Buffer.compare(readFileSync(out), readFileSync(file))).toBe(0);
  });

  it("--pause-cmd/--resume-cmd: the pause command runs, the resume command does not after a commit", async () => {
    const { file, writer } = liveWriter(1024, 16, 64);
    await untilWriting(file);
    const out = join(dir, "cmd.img");
    const [paused, resumed] = [join(dir, "paused"), join(dir, "resumed")];
    const rx = await startReceiver(["--out", out, "--key", key]);
    const tx = send(
      file,
      rx.port,
      "--bandwidth",
      "40MB/s",
      "--pause-cmd",
      `kill -STOP ${writer.pid} && echo paused > ${paused}`,
      "--resume-cmd",
      `kill -CONT ${writer.pid} && echo resumed > ${resumed}`,
    );
    const [s, r] = await Promise.all([tx.exited, rx.exited]);
    expect(s.code, s.stderr).toBe(0);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(s.stdout).status).toBe("completed");
    expect([existsSync(paused), existsSync(resumed)]).toEqual([true, false]);
    expect(state(writer.pid!)).toBe("T");
    expect(Buffer.compare(readFileSync(out), readFileSync(file))).toBe(0);
  });

  it.each(["--pid", "--pause-cmd", "--qmp"])(
    "%s with the receiver killed after the pause: the writer is resumed and runs again",
    async (how) => {
      // whole random pages over 8 MiB at 4 MB/s: the final round takes about 2 s
      const { file, writer } = liveWriter(2048, 16, 4096);
      const pid = writer.pid!;
      await untilWriting(file);
      const resumed = join(dir, `resumed-${files}`);
      const qmp = how === "--qmp" ? await fakeQemu(pid) : null;
      const args = {
        "--pid": ["--pid", String(pid)],
        "--pause-cmd": ["--pause-cmd", `kill -STOP ${pid}`, "--resume-cmd", `kill -CONT ${pid} && echo > ${resumed}`],
        "--qmp": ["--qmp", qmp?.path ?? ""],
      }[how]!;
      const rx = await startReceiver(["--out", join(dir, "killed.img"), "--key", key]);
      const tx = send(file, rx.port, "--bandwidth", "4MB/s", "--max-rounds", "1", ...args);
      while (state(pid) !== "T") {
        expect(tx.child.exitCode, tx.stderr).toBe(null);
        await sleep(5);
      }
      rx.kill("SIGKILL");
      const s = await tx.exited;
      expect(s.code, s.stderr).toBe(1);
      if (how === "--pid") expect(s.stderr).toMatch(new RegExp(`resumed process ${pid} \\(SIGCONT\\)`));
      if (how === "--pause-cmd") expect(existsSync(resumed)).toBe(true);
      if (how === "--qmp") expect(qmp!.log).toEqual(["qmp_capabilities", "query-status", "stop", "cont"]);
      expect(state(pid)).not.toBe("T");
      expect(await changes(file)).toBe(true);
    },
  );

  it("--qmp: QMP stop at the pause, no cont after the commit; the destination equals the file", async () => {
    const { file, writer } = liveWriter(1024, 16, 64);
    await untilWriting(file);
    const qmp = await fakeQemu(writer.pid!);
    const out = join(dir, "qmp.img");
    const rx = await startReceiver(["--out", out, "--key", key]);
    const [s, r] = await Promise.all([
      send(file, rx.port, "--bandwidth", "40MB/s", "--qmp", qmp.path).exited,
      rx.exited,
    ]);
    expect(s.code, s.stderr).toBe(0);
    expect(r.code, r.stderr).toBe(0);
    expect(qmp.log).toEqual(["qmp_capabilities", "query-status", "stop"]);
    expect(s.stderr).toMatch(/QEMU on .* stays paused: the destination owns the guest now/);
    expect(state(writer.pid!)).toBe("T");
    expect(Buffer.compare(readFileSync(out), readFileSync(file))).toBe(0);
  });

  it("usage: one way to pause, --pause-cmd with --resume-cmd, a live --pid, a reachable --qmp", () => {
    const mem = join(dir, "usage.img");
    writeFileSync(mem, Buffer.alloc(4096));
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [CLI, "send", "--memory", mem, "--to", "127.0.0.1:9", ...args], { encoding: "utf8" });
    const cases: [string[], number, RegExp][] = [
      [["--pause-cmd", "true"], 2, /--pause-cmd and --resume-cmd go together/],
      [["--pid", String(process.pid), "--qmp", "x.sock"], 2, /give one of --pid, --qmp or --pause-cmd\/--resume-cmd/],
      [["--pid", "abc"], 2, /--pid: 'abc' is not a process id/],
      [["--pid", "4194303"], 2, /--pid 4194303: no such process/],
      [["--qmp", join(dir, "none.sock")], 1, /cannot connect to QMP socket/],
    ];
    for (const [args, code, message] of cases) {
      const r = run(...args);
      expect([r.status, r.stderr], args.join(" ")).toEqual([code, expect.stringMatching(message)]);
    }
  });
});

/** A fake QEMU monitor whose guest is process `pid`: stop/cont send SIGSTOP/SIGCONT to it. */
async function fakeQemu(pid: number): Promise<{ path: string; log: string[] }> {
  const path = join(dir, `qmp${files++}.sock`);
  const log: string[] = [];
  let running = true;
  const server: Server = createServer((sock) => {
    sock.write(
      `${JSON.stringify({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 } }, capabilities: [] } })}\r\n`,
    );
    let buf = "";
    sock.on("data", (d) => {
      buf += d.toString();
      for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
        const msg = JSON.parse(buf.slice(0, i)) as { execute: string; id?: unknown };
        buf = buf.slice(i + 1);
        log.push(msg.execute);
        let ret: unknown = {};
        if (msg.execute === "stop" || msg.execute === "cont") {
          running = msg.execute === "cont";
          process.kill(pid, running ? "SIGCONT" : "SIGSTOP");
          // like QEMU's stop, answer once the guest no longer runs
          while (!running && state(pid) !== "T");
        } else if (msg.execute === "query-status")
          ret = { running, singlestep: false, status: running ? "running" : "paused" };
        sock.write(`${JSON.stringify({ return: ret, id: msg.id })}\r\n`);
      }
    });
    sock.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(path, r));
  onTestFinished(() => void server.close());
  return { path, log };
}
