// `pagewire send` on the RAM file of a running QEMU guest (TCG, 128 MiB in /dev/shm, written
// through QEMU's mapping: its mtime does not move): without a way to pause the guest it
// refuses (MEMORY_CHANGED, seen by the content re-scan); with --qmp it stops the guest for
// the final round, the receiver gets the paused guest's RAM byte for byte, and the guest
// stays paused.
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { QmpClient } from "../../src/qemu/qmp.js";
import {
  buildInitramfs,
  guestArgs,
  kernelPath,
  qemuTestMissing,
  readSerial,
  startQemu,
  waitFor,
} from "../support/qemu-guest.js";
import { runCli, startReceiver } from "../support/receiver.js";

const missing = qemuTestMissing("the QEMU send test");

describe.skipIf(!!missing)("pagewire send --qmp (real QEMU guest)", () => {
  const dir = mkdtempSync(join(tmpdir(), "pw-send-qmp-"));
  const guest = { ram: `/dev/shm/pw-send-qmp-${process.pid}`, qmp: join(dir, "g.qmp"), serial: join(dir, "g.log") };
  const key = join(dir, "psk");
  writeFileSync(key, "a pre-shared key, 32 bytes long!");
  let qemu: ChildProcess | null = null;
  afterAll(() => {
    qemu?.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    rmSync(guest.ram, { force: true });
  });

  const send = async (out: string, ...extra: string[]) => {
    // a source that aborts with frames in flight may cut one short, and its ABORT with it: the
    // receiver then waits out its reconnect window (30 s by default) before discarding
    const rx = await startReceiver(["--out", out, "--key", key, "--reconnect-window", "3s"]);
    const tx = runCli([
      "send",
      "--memory",
      guest.ram,
      "--to",
      `127.0.0.1:${rx.port}`,
      "--key",
      key,
      "--max-rounds",
      "3",
      "--json",
      ...extra,
    ]);
    const [s, r] = await Promise.all([tx.exited, rx.exited]);
    return { s, r };
  };

  it("refuses a running guest without --qmp, and moves it paused with --qmp", async () => {
    qemu = startQemu(guestArgs({ kernel: kernelPath()!, initrd: buildInitramfs(dir) }, guest));
    await waitFor("the guest's 3rd heartbeat", () => readSerial(guest.serial).beats.length >= 3, 90_000, qemu);

    const refused = join(dir, "refused.img");
    const without = await send(refused);
    expect(without.s.code, without.s.stderr).toBe(1);
    // caught by the re-scan at the pause, or else by the digest at the commit: either way refused
    expect(without.s.stderr).toMatch(
      /changed while it was being sent \((\d+ pages changed between|the destination's digest differs)/,
    );
    expect(without.s.stderr).toMatch(/pass --pid PID, --qmp SOCKET/);
    expect(existsSync(refused)).toBe(false);

    const out = join(dir, "received.img");
    const beatsBefore = readSerial(guest.serial).beats.length;
    const withQmp = await send(out, "--qmp", guest.qmp);
    expect(withQmp.s.code, withQmp.s.stderr).toBe(0);
    expect(withQmp.r.code, withQmp.r.stderr).toBe(0);
    expect(JSON.parse(withQmp.s.stdout).status).toBe("completed");
    expect(withQmp.s.stderr).toMatch(/stays paused: the destination owns the guest now/);
    const qmp = await QmpClient.connect(guest.qmp);
    try {
      expect((await qmp.queryStatus()).status).toBe("paused");
    } finally {
      qmp.close();
    }
    expect(readSerial(guest.serial).beats.length).toBeGreaterThanOrEqual(beatsBefore); // it ran until the pause
    expect(Buffer.compare(readFileSync(out), readFileSync(guest.ram))).toBe(0);
  });
});
