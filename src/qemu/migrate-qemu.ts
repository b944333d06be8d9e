// Live migration of a QEMU guest whose RAM is a shared file (Node only): pagewire moves
// the RAM, QEMU moves only the device state.
//
//   source QEMU (RAM file A)                                  destination QEMU (RAM file B, -incoming)
//   running ── pre-copy rounds: A → B by hash scan, in place ──▶ (B written with pwrite)
//   QMP stop ─ final round ────────────────────────────────────▶ pagewire commit (digest checked)
//   migrate-set-capabilities x-ignore-shared (both sides), QMP migrate: device state only ──▶ paused
//                                                               QMP cont: running  ◀── the commit point
//
// Until the destination QEMU runs, file A and the source QEMU are untouched, so any failure
// resumes the source (QMP cont, if it was running) and stops a destination QEMU this
// function started.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, ftruncateSync, openSync, statSync } from "node:fs";
import { PagewireError } from "../errors.js";
import { MigrationDestination } from "../engine/destination.js";
import type { MigrationReport } from "../engine/report.js";
import { MigrationSource, type MigrationMode, type MigrationSourceOptions } from "../engine/source.js";
import { PAGE_SIZE } from "../kernel/abi.js";
import { createKernel, loadKernel } from "../kernel/loader.js";
import { createInProcessPair } from "../transport/in-process.js";
import { FileMemory } from "../memory/file-memory.js";
import { FileScanWorkers, scanWorkerCount } from "../memory/file-scan-workers.js";
import type { DirtyLog } from "../memory/guest-memory.js";
import { QmpClient, QmpError, type QmpMigrationInfo } from "./qmp.js";

export interface QemuMigrationOptions {
  /** The source QEMU's QMP unix socket. */
  sourceQmp: string;
  /** The source guest's RAM file (memory-backend-file, share=on). */
  sourceRam: string;
  /** The destination's RAM file: created with the source's size if missing, else must have that size. */
  destRam: string;
  /** The destination QEMU's QMP unix socket. */
  destQmp: string;
  /** Where the destination QEMU listens for QEMU's migration stream (its -incoming), e.g. "tcp:127.0.0.1:4444". */
  incoming: string;
  /**
   * A shell command that starts the destination QEMU (with -incoming and RAM on destRam);
   * run after destRam exists, killed if the migration fails. Without it the destination
   * QEMU must already be waiting.
   */
  destCommand?: string;
  mode?: Extract<MigrationMode, "precopy" | "stop-and-copy">;
  /** Bytes per second for pagewire's RAM transfer during pre-copy (default unlimited). */
  maxBandwidth?: number;
  /**
   * Keep maxBandwidth for the final round too. Default false: as in QEMU (whose completion
   * stage sends the remaining pages regardless of max-bandwidth) the round sent while the
   * guest is paused runs at full speed.
   */
  limitFinalRound?: boolean;
  downtimeLimitMs?: number;
  maxRounds?: number;
  /** A round that held pages back lasts at least this long, ms (MigrationSourceOptions.minRoundMs). */
  minRoundMs?: number;
  policy?: MigrationSourceOptions["policy"];
  /**
   * Threads that hash-scan the source's RAM file at each harvest, the one while the guest is
   * paused included (default: the cores available, at most 8; 1: the calling thread).
   */
  scanWorkers?: number;
  /** QMP command timeout, ms (default 10 000); QEMU's device-state migration gets 6×. */
  qmpTimeoutMs?: number;
  /** Waiting for the destination QEMU's QMP socket after destCommand, ms (default 30 000). */
  destStartTimeoutMs?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Cancels before the decision (CANCELLED; the source QEMU runs its guest on). */
  signal?: AbortSignal;
  /** Called with pagewire's MigrationSource once made (its events: progress, rounds …). */
  onSource?: (source: MigrationSource) => void;
}

export interface QemuMigrationResult {
  /** pagewire's report of the RAM transfer (its downtime is pause → RAM committed). */
  pagewire: MigrationReport;
  /** QEMU's query-migrate after the device-state migration. */
  qemu: QmpMigrationInfo;
  /** Start → destination guest running, ms. */
  totalTime: number;
  /** QMP stop on the source → QMP cont returned on the destination, ms. */
  downtime: number;
  /** Of which: the final round and pagewire's commit, ms … */
  finalRoundTime: number;
  /** … (within it: the hash scan of all of A that finds the final round's pages, ms: O(RAM)) … */
  finalScanTime: number;
  /** … and QEMU's device-state migration and the cont, ms. */
  deviceTime: number;
  /** pagewire's bytes on the wire plus QEMU's migration stream. */
  bytesSent: number;
}

export class QemuMigrationError extends PagewireError {}

export async function migrateQemuGuest(o: QemuMigrationOptions): Promise<QemuMigrationResult> {
  const log = o.log ?? (() => {});
  const timeoutMs = o.qmpTimeoutMs ?? 10_000;
  const start = performance.now();
  const src = await QmpClient.connect(o.sourceQmp, { timeoutMs });
  let dest: QmpClient | null = null;
  let child: ChildProcess | null = null;
  let a: FileMemory | null = null;
  let b: FileMemory | null = null;
  let dirtyLog: DirtyLog | undefined;
  let scanPool: FileScanWorkers | null = null;
  let sourcePaused = false; // paused by us
  let committed = false;
  try {
    const status = await src.queryStatus();
    if (status.status !== "running" && status.status !== "paused") {
      throw new QemuMigrationError("QEMU_STATE", `source QEMU is '${status.status}', not running or paused`);
    }
    const wasRunning = status.running;
    a = FileMemory.open(o.sourceRam);
    const size = a.pageCount * PAGE_SIZE;
    if (!existsSync(o.destRam)) {
      const fd = openSync(o.destRam, "wx", 0o600);
      try {
        ftruncateSync(fd, size);
      } finally {
        closeSync(fd);
      }
    } else if (statSync(o.destRam).size !== size) {
      throw new QemuMigrationError(
        "FILE_SIZE",
        `destination RAM file ${o.destRam} has ${statSync(o.destRam).size} bytes, the source's has ${size}`,
      );
    }
    if (o.destCommand) {
      log(`starting the destination QEMU: ${o.destCommand}`);
      child = spawn("sh", ["-c", o.destCommand], { stdio: ["ignore", "ignore", "inherit"], detached: true });
    }
    dest = await connectWhenUp(o.destQmp, timeoutMs, o.destStartTimeoutMs ?? 30_000, child);
    const dstatus = await dest.queryStatus();
    if (dstatus.status !== "inmigrate") {
      throw new QemuMigrationError(
        "QEMU_STATE",
        `destination QEMU is '${dstatus.status}', not 'inmigrate' (start it with -incoming ${o.incoming})`,
      );
    }
    // x-ignore-shared first: a QEMU that refuses it (too old) fails before any copying
    await src.setMigrationCapabilities({ "x-ignore-shared": true });
    await dest.setMigrationCapabilities({ "x-ignore-shared": true });
    b = FileMemory.open(o.destRam, { writable: true });

    // RAM: pagewire, source and destination in this process
    const [ta, tb] = createInProcessPair();
    const destination = new MigrationDestination({ memory: b, transport: tb, kernel: await createKernel() });
    const received = destination.receive();
    received.catch(() => {});
    let pausedAt = 0;
    // the final scan of A runs while the guest is paused: spread over the scan workers
    const kernel = await loadKernel();
    let finalScanTime = 0;
    if (o.mode !== "stop-and-copy") {
      // the pool is ours to close, after the guest runs again: ending threads while it is paused costs CPU
      const workers = scanWorkerCount(kernel, a.pageCount, o.scanWorkers);
      if (workers > 1) scanPool = await FileScanWorkers.start(kernel, a.path, a.pageCount, workers);
      const log = a.hashDirtyLog(kernel, scanPool ? { scanPool } : { scanWorkers: 1 });
      dirtyLog = {
        ...log,
        harvest: async (into) => {
          const t0 = performance.now();
          await log.harvest(into);
          if (pausedAt) finalScanTime = performance.now() - t0;
        },
      };
    }
    const source: MigrationSource = new MigrationSource({
      memory: a,
      transport: ta,
      kernel,
      mode: o.mode ?? "precopy",
      dirtyLog,
      maxBandwidth: o.maxBandwidth,
      downtimeLimitMs: o.downtimeLimitMs,
      maxRounds: o.maxRounds,
      minRoundMs: o.minRoundMs,
      policy: o.policy,
      onPause: async () => {
        pausedAt = performance.now();
        // like QEMU's completion stage: the last round, guest paused, is not rate-limited
        if (!o.limitFinalRound) source.setMaxBandwidth(Infinity);
        if (wasRunning) {
          await src.stop();
          sourcePaused = true;
        }
        log(`source paused after ${Math.round(pausedAt - start)} ms`);
      },
      onResume: async () => {
        if (sourcePaused) await src.cont();
        sourcePaused = false;
      },
    });
    o.onSource?.(source);
    const report = await source.migrate({ signal: o.signal });
    await received;
    await b.flush();
    const ramDone = performance.now();
    log(
      `RAM committed: ${report.ram.transferred} bytes in ${report.rounds.length} rounds, ${Math.round(ramDone - pausedAt)} ms after the pause`,
    );

    // device state: QEMU, RAM in the shared files skipped
    await src.migrate(o.incoming);
    const info = await src.waitForMigration({ timeoutMs: timeoutMs * 6 });
    await dest.waitForStatus(["paused", "running"], { timeoutMs });
    await dest.cont();
    committed = true;
    child?.unref(); // the destination guest outlives this process
    const running = performance.now();
    log(`destination running: QEMU sent ${info.ram?.transferred ?? 0} bytes in ${Math.round(running - ramDone)} ms`);
    return {
      pagewire: report,
      qemu: info,
      totalTime: running - start,
      downtime: running - pausedAt,
      finalRoundTime: ramDone - pausedAt,
      finalScanTime,
      deviceTime: running - ramDone,
      bytesSent: report.ram.transferred + (info.ram?.transferred ?? 0),
    };
  } catch (err) {
    if (!committed) {
      if (sourcePaused) {
        await src.cont().then(
          () => log("source resumed"),
          (e: Error) => log(`could not resume the source: ${e.message}`),
        );
      }
      if (child && child.exitCode === null) {
        try {
          process.kill(-child.pid!, "SIGTERM");
        } catch {
          child.kill("SIGTERM");
        }
      }
    }
    throw err;
  } finally {
    dirtyLog?.stop(); // if a failure left it running
    await scanPool?.close();
    src.close();
    dest?.close();
    a?.close();
    b?.close();
  }
}

async function connectWhenUp(
  path: string,
  timeoutMs: number,
  waitMs: number,
  child: ChildProcess | null,
): Promise<QmpClient> {
  const deadline = Date.now() + (child ? waitMs : 0);
  for (;;) {
    try {
      return await QmpClient.connect(path, { timeoutMs });
    } catch (err) {
      if (!(err instanceof QmpError && err.code === "QMP_CONNECT") || Date.now() > deadline) throw err;
      if (child && child.exitCode !== null) {
        throw new QemuMigrationError(
          "QEMU_EXITED",
          `the destination command exited with ${child.exitCode} before its QMP socket ${path} answered`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
