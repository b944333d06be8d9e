// Real QEMU guests (TCG, 128 MiB of ordinary RAM) migrated by QEMU itself through the
// qemu-proxy pair (`pagewire qemu-proxy send` / `receive`, two processes, keyed frames):
// the heartbeat goes on in the destination with the same pattern checksum; every failure —
// a source without return-path, the receiving proxy killed mid-migration, a destination QEMU
// that would start the guest by itself — leaves the source QEMU running its guest. With
// `send --qmp` (a second monitor of the source) the proxy scales QEMU's downtime-limit to the
// link while QEMU iterates and gives the user's value back afterwards, on failure too.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { ChildProcess } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QmpClient } from "../../src/qemu/qmp.js";
import { runCli, type CliProcess } from "../support/receiver.js";
import {
  buildInitramfs,
  guestArgs,
  kernelPath,
  qemuTestMissing,
  readSerial,
  startQemu,
  waitFor,
} from "../support/qemu-guest.js";

const missing = qemuTestMissing("the QEMU proxy test");

describe.skipIf(!!missing)("pagewire qemu-proxy (real QEMU guests)", () => {
  const dir = mkdtempSync(join(tmpdir(), "pw-qproxy-"));
  const procs: ChildProcess[] = [];
  const keyFile = join(dir, "key");
  let files: { kernel: string; initrd: string };
  const a = { qmp: join(dir, "a.qmp"), serial: join(dir, "a.log") };
  const proxyQmp = join(dir, "a-proxy.qmp"); // the sending proxy's monitor (this test holds a.qmp)
  let qa: QmpClient;
  let runs = 0;

  beforeAll(async () => {
    writeFileSync(keyFile, "a key of at least sixteen bytes\n");
    files = { kernel: kernelPath()!, initrd: buildInitramfs(dir) };
    const source = startQemu([...guestArgs(files, a), "-qmp", `unix:${proxyQmp},server=on,wait=off`]);
    procs.push(source);
    await waitFor("the source guest's 5th heartbeat", () => readSerial(a.serial).beats.length >= 5, 120_000, source);
    qa = await QmpClient.connect(a.qmp);
  }, 150_000);
  afterAll(() => {
    qa?.close();
    for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  /** A destination QEMU waiting on a unix socket (-S unless `autostart`), and the proxy pair around it. */
  async function proxies(o: { autostart?: boolean; returnPath?: boolean; qmp?: boolean } = {}) {
    const id = runs++;
    const b = {
      qmp: join(dir, `b${id}.qmp`),
      serial: join(dir, `b${id}.log`),
      incoming: `unix:${join(dir, `b${id}.in`)}`,
    };
    const dest = startQemu([...guestArgs(files, b), ...(o.autostart ? [] : ["-S"])]);
    procs.push(dest);
    await waitFor("the destination's QMP socket", () => existsSync(b.qmp), 30_000, dest);
    const rx = runCli([
      "qemu-proxy",
      "receive",
      "--listen",
      "127.0.0.1:0",
      "--incoming",
      b.incoming,
      "--qmp",
      b.qmp,
      "--key",
      keyFile,
      "--json",
    ]);
    const port = await listening(rx);
    const uri = `unix:${join(dir, `s${id}.sock`)}`;
    const tx = runCli([
      "qemu-proxy",
      "send",
      "--listen",
      uri,
      "--to",
      `127.0.0.1:${port}`,
      "--key",
      keyFile,
      "--bandwidth",
      "50MB/s",
      ...(o.qmp ? ["--qmp", proxyQmp] : ["--json"]), // with --qmp: its log lines (stderr), not the JSON result
    ]);
    await listening(tx);
    await qa.setMigrationCapabilities({ "return-path": o.returnPath ?? true });
    await qa.setMigrationParameters({ "max-bandwidth": 2 ** 40, "downtime-limit": 300 }); // the proxy paces QEMU
    await qa.migrate(uri);
    return { b, dest, rx, tx };
  }

  const downtimeLimit = async () =>
    (await qa.execute<{ "downtime-limit": number }>("query-migrate-parameters"))["downtime-limit"];

  async function sourceRunsOn() {
    const info = await qa.waitForMigration({ timeoutMs: 60_000 }).catch((e: Error) => e);
    expect(info).toBeInstanceOf(Error); // QEMU's own migrate failed …
    expect((await qa.queryStatus()).status).toBe("running"); // … and its guest runs
    const last = readSerial(a.serial).beats.at(-1)![0];
    await waitFor("2 more heartbeats on the source", () => readSerial(a.serial).beats.at(-1)![0] >= last + 2, 30_000);
  }

  it("refuses a source QEMU without its return path; the source runs on", async () => {
    const { rx, tx } = await proxies({ returnPath: false });
    const t = await tx.exited;
    expect(t.code).toBe(1);
    expect(t.stderr).toMatch(/return path/);
    rx.kill("SIGKILL");
    await sourceRunsOn();
  }, 120_000);

  it("the receiving proxy killed mid-migration: QEMU's migrate fails, the source runs on, its downtime-limit given back", async () => {
    const { b, rx, tx, dest } = await proxies({ qmp: true });
    // mid-migration, once the proxy has scaled QEMU's downtime-limit (pagewire sends fewer bytes than QEMU writes)
    for (let t = Date.now(); (await downtimeLimit()) >= 300; ) {
      if (Date.now() - t > 30_000) throw new Error("the proxy did not scale QEMU's downtime-limit");
      await new Promise((r) => setTimeout(r, 5));
    }
    rx.kill("SIGKILL");
    const t = await tx.exited;
    expect(t.code).toBe(1);
    expect(await downtimeLimit()).toBe(300);
    await sourceRunsOn();
    // the destination never ran the guest: its load failed (it exits), or the proxy died
    // before feeding it (QEMU's first megabytes fill the source proxy while the session is set up)
    await waitFor("the destination QEMU to exit", () => dest.exitCode !== null, 5_000).catch(async () => {
      const qb = await QmpClient.connect(b.qmp);
      try {
        expect((await qb.queryStatus()).status).toBe("inmigrate");
      } finally {
        qb.close();
      }
    });
  }, 120_000);

  it("a destination QEMU without -S is stopped before the decision; the source resumes after its pause (send --qmp: QEMU stopped under a scaled downtime-limit, the user's given back)", async () => {
    const { rx, tx, dest } = await proxies({ autostart: true, qmp: true });
    const [r, t] = await Promise.all([rx.exited, tx.exited]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/-S/);
    expect(t.code).toBe(1);
    // QEMU iterated to its stop under the tuner: the limit it stopped with was below the user's
    const stoppedAt = /QEMU stopped its guest \(completion\) at downtime-limit (\d+) ms/.exec(t.stderr);
    expect(stoppedAt, t.stderr).not.toBeNull();
    expect(Number(stoppedAt![1])).toBeGreaterThanOrEqual(1);
    expect(Number(stoppedAt![1])).toBeLessThan(300);
    expect(await downtimeLimit()).toBe(300);
    await sourceRunsOn();
    expect(qa.events.some((e) => e.event === "STOP")).toBe(true); // it had stopped: QEMU's completion had begun
    await waitFor("the destination QEMU to quit", () => dest.exitCode !== null, 30_000);
  }, 120_000);

  it("send --qmp: an unreachable monitor, or one another client holds, fails before QEMU is told where to go", async () => {
    const args = [
      "qemu-proxy",
      "send",
      "--listen",
      `unix:${join(dir, "never.sock")}`,
      "--to",
      "127.0.0.1:9",
      "--key",
      keyFile,
    ];
    const gone = await runCli([...args, "--qmp", join(dir, "no-such.qmp")]).exited;
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/cannot connect to QMP socket/);
    expect(gone.stderr).not.toMatch(/listening on/);
    // a.qmp is held by this test's client: QEMU does not greet a second one
    const held = await runCli([...args, "--qmp", a.qmp]).exited;
    expect(held.code).toBe(1);
    expect(held.stderr).toMatch(/another client may hold it/);
    expect(held.stderr).not.toMatch(/listening on/);
  }, 30_000);

  it("moves the running guest: heartbeat continues on the destination, pattern intact", async () => {
    const pattern = readSerial(a.serial).pattern;
    expect(pattern).toMatch(/^[0-9a-f]{32}$/);
    const { b, rx, tx } = await proxies();
    const [r, t] = await Promise.all([rx.exited, tx.exited]);
    expect(t.code, t.stderr).toBe(0);
    expect(r.code, r.stderr).toBe(0);
    const sent = JSON.parse(t.stdout) as {
      bytesSent: number;
      stream: { bytes: number; unchanged: number };
      downtimeLimit?: unknown;
    };
    expect(sent.bytesSent).toBeGreaterThan(0);
    expect(sent.bytesSent).toBeLessThan(sent.stream.bytes); // zero, unchanged, dedup, XBZRLE, RLE
    expect(sent.downtimeLimit).toBeUndefined(); // without --qmp QEMU's parameters are left alone
    const info = await qa.waitForMigration({ timeoutMs: 30_000 });
    expect(info.status).toBe("completed");
    expect((await qa.queryStatus()).status).toBe("postmigrate");
    const qb = await QmpClient.connect(b.qmp);
    try {
      expect((await qb.queryStatus()).status).toBe("running");
    } finally {
      qb.close();
    }
    const last = readSerial(a.serial).beats.at(-1)![0];
    await waitFor(
      "3 heartbeats on the destination",
      () => readSerial(b.serial).beats.filter(([n]) => n > last).length >= 3,
      30_000,
    );
    expect(readSerial(b.serial).beats.every(([, md5]) => md5 === pattern)).toBe(true);
  }, 180_000);
});

/** Waits for the proxy's 'listening on ADDRESS' line; returns the port (0 for a unix socket). */
async function listening(p: CliProcess): Promise<number> {
  await waitFor(
    `'listening on' from ${p.child.spawnargs.slice(2, 4).join(" ")}`,
    () => /listening on/.test(p.stderr),
    30_000,
    p.child,
  );
  return Number(/listening on \S*:(\d+)\s/.exec(p.stderr)?.[1] ?? 0);
}
