// A real QEMU guest (TCG, 128 MiB, RAM in /dev/shm) migrated by `pagewire migrate-qemu`:
// the heartbeat must go on in the destination with the same pattern checksum.
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { QmpClient } from "../../src/qemu/qmp.js";
import { runCli } from "../support/receiver.js";
import {
  buildInitramfs,
  freePort,
  guestArgs,
  kernelPath,
  qemuTestMissing,
  QEMU,
  readSerial,
  startQemu,
  waitFor,
} from "../support/qemu-guest.js";

const missing = qemuTestMissing("the QEMU migration test");

describe.skipIf(!!missing)("pagewire migrate-qemu (real QEMU guest)", () => {
  const dir = mkdtempSync(join(tmpdir(), "pw-qemu-"));
  const shm = `/dev/shm/pw-qemu-${process.pid}`;
  const procs: ChildProcess[] = [];
  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
    // the destination QEMU was started (detached) by migrate-qemu: stop it through QMP
    await QmpClient.connect(join(dir, "b.qmp"), { connectTimeoutMs: 2000, timeoutMs: 2000 }).then(
      (q) => q.quit().finally(() => q.close()),
      () => {},
    );
    rmSync(dir, { recursive: true, force: true });
    rmSync(`${shm}-a`, { force: true });
    rmSync(`${shm}-b`, { force: true });
  });

  it("moves a running guest: heartbeat continues on the destination, pattern intact", async () => {
    const files = { kernel: kernelPath()!, initrd: buildInitramfs(dir) };
    const a = { ram: `${shm}-a`, qmp: join(dir, "a.qmp"), serial: join(dir, "a.log") };
    const b = { ram: `${shm}-b`, qmp: join(dir, "b.qmp"), serial: join(dir, "b.log") };
    const source = startQemu(guestArgs(files, a));
    procs.push(source);
    await waitFor("the source guest's 5th heartbeat", () => readSerial(a.serial).beats.length >= 5, 90_000, source);
    const pattern = readSerial(a.serial).pattern;
    expect(pattern).toMatch(/^[0-9a-f]{32}$/);

    const migrateQemu = async (
      incomingPort: number,
      listenPort: number,
    ): Promise<{ code: number | null; out: string; err: string }> => {
      const destCommand = [QEMU, ...guestArgs(files, { ...b, incoming: `tcp:127.0.0.1:${listenPort}` })]
        .map((s) => `'${s}'`)
        .join(" ");
      const cli = runCli(
        [
          "migrate-qemu",
          "--json",
          "--source-qmp",
          a.qmp,
          "--source-ram",
          a.ram,
          "--dest-ram",
          b.ram,
          "--dest-qmp",
          b.qmp,
          "--incoming",
          `127.0.0.1:${incomingPort}`,
          "--dest-command",
          `exec ${destCommand}`,
          "--bandwidth",
          "100MB/s",
        ],
        { waitForStderr: false },
      ); // the destination QEMU inherits its stderr
      const { code, stdout, stderr } = await cli.exited;
      return { code, out: stdout, err: stderr };
    };

    // 1. a failure after the RAM was copied and the source stopped (QEMU's device-state
    //    migration cannot connect): the source resumes and goes on beating
    const wrong = await freePort();
    const failed = await migrateQemu(wrong, await freePort());
    expect(failed.code, failed.err).toBe(1);
    expect(failed.err).toMatch(/QEMU migration failed.*Connection refused/);
    const beatsAtFailure = readSerial(a.serial).beats.length;
    await waitFor(
      "2 more heartbeats on the source after the failed migration",
      () => readSerial(a.serial).beats.length >= beatsAtFailure + 2,
      30_000,
      source,
    );
    const qa = await QmpClient.connect(a.qmp);
    try {
      expect((await qa.queryStatus()).status).toBe("running");
    } finally {
      qa.close();
    }
    // the destination QEMU migrate-qemu started was stopped
    for (let i = 0; ; i++) {
      const alive = await QmpClient.connect(b.qmp, { connectTimeoutMs: 500 }).then(
        (q) => (q.close(), true),
        () => false,
      );
      if (!alive) break;
      if (i >= 25) throw new Error("the destination QEMU of the failed migration is still running");
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(existsSync(b.ram)).toBe(true);
    rmSync(b.serial, { force: true });

    // 2. the migration, into the same (pre-sized, already written) RAM file B
    const port = await freePort();
    const { code, out, err } = await migrateQemu(port, port);
    expect(code, err).toBe(0);
    const result = JSON.parse(out) as {
      downtime: number;
      totalTime: number;
      bytesSent: number;
      pagewire: { status: string };
    };
    expect(result.pagewire.status).toBe("completed");

    const lastOnSource = readSerial(a.serial).beats.at(-1)![0];
    // the destination runs the same guest: its serial log starts right after the source's last heartbeat
    const qmpB = await QmpClient.connect(b.qmp);
    try {
      expect((await qmpB.queryStatus()).status).toBe("running");
    } finally {
      qmpB.close();
    }
    await waitFor("3 heartbeats on the destination", () => readSerial(b.serial).beats.length >= 3, 30_000);
    const beats = readSerial(b.serial).beats;
    expect(readSerial(b.serial).pattern).toBeNull(); // no boot there: it continued
    expect(beats[0][0]).toBeGreaterThanOrEqual(lastOnSource);
    expect(beats[0][0]).toBeLessThanOrEqual(lastOnSource + 1);
    for (let i = 1; i < beats.length; i++) expect(beats[i][0]).toBe(beats[i - 1][0] + 1);
    for (const [, md5] of beats) expect(md5).toBe(pattern);
    // the source stays stopped (QEMU's postmigrate state)
    const qmpA = await QmpClient.connect(a.qmp);
    try {
      expect((await qmpA.queryStatus()).running).toBe(false);
    } finally {
      qmpA.close();
    }
    console.log(
      `migrate-qemu: total ${result.totalTime.toFixed(0)} ms, downtime ${result.downtime.toFixed(1)} ms, ${(result.bytesSent / 2 ** 20).toFixed(1)} MiB sent`,
    );
  }, 170_000);
});
