// How `pagewire send` stops the process writing the RAM file for the final round, and
// starts it again when the migration fails before the decision: a PID (SIGSTOP/SIGCONT),
// a QEMU monitor (QMP stop/cont) or two shell commands. Without one, send cannot pause the
// writer: PauseCheck watches the file across the pause and refuses a file that still
// changes (MEMORY_CHANGED), rather than commit a copy that the source keeps rewriting.
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { PagewireError } from "../errors.js";
import { DirtyBitmap } from "../kernel/dirty-bitmap.js";
import type { Kernel } from "../kernel/kernel.js";
import type { DirtyLog } from "../memory/guest-memory.js";
import { QmpClient } from "../qemu/qmp.js";
import { UsageError } from "./usage.js";

export interface PauseOptions {
  pid?: string;
  qmp?: string;
  "pause-cmd"?: string;
  "resume-cmd"?: string;
}

export interface GuestPause {
  /** What pauses the writer, for messages ("process 1234 (SIGSTOP)"); null when nothing does. */
  readonly what: string | null;
  /** True when the pause cannot be trusted to stop every write (no way, or a user command): check it. */
  readonly verify: boolean;
  onPause(): Promise<void>;
  onResume(): Promise<void>;
  /** After a commit: the writer stays stopped, the destination owns the guest. One line, or null. */
  committedNote(): string | null;
  close(): void;
}

const NOTE = (line: string) => process.stderr.write(`pagewire send: ${line}\n`);

/** The pause the options ask for (at most one way); QMP connects here, so a bad socket fails before any page goes. */
export async function guestPause(o: PauseOptions): Promise<GuestPause> {
  const ways = [
    o.pid !== undefined,
    o.qmp !== undefined,
    o["pause-cmd"] !== undefined || o["resume-cmd"] !== undefined,
  ];
  if (ways.filter(Boolean).length > 1)
    throw new UsageError("give one of --pid, --qmp or --pause-cmd/--resume-cmd: they all pause the same writer");
  if (o.pid !== undefined) return pidPause(o.pid);
  if (o.qmp !== undefined) return qmpPause(o.qmp);
  if (ways[2]) {
    // a pause without its resume would leave the writer stopped after a failed migration
    if (!o["pause-cmd"] || !o["resume-cmd"]) throw new UsageError("--pause-cmd and --resume-cmd go together");
    return commandPause(o["pause-cmd"], o["resume-cmd"]);
  }
  return {
    what: null,
    verify: true,
    onPause: async () => {},
    onResume: async () => {},
    committedNote: () => null,
    close: () => {},
  };
}

function pidPause(value: string): GuestPause {
  const pid = Number(value);
  if (!Number.isInteger(pid) || pid <= 1) throw new UsageError(`--pid: '${value}' is not a process id`);
  try {
    process.kill(pid, 0); // exists, and this user may signal it
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(`--pid ${pid}: ${code === "ESRCH" ? "no such process" : `cannot signal it (${code})`}`);
  }
  let stopped = false;
  return {
    what: `process ${pid} (SIGSTOP)`,
    verify: false,
    async onPause() {
      signal(pid, "SIGSTOP");
      try {
        await untilStopped(pid);
      } catch (err) {
        // the engine resumes only a paused guest: undo the half-done pause here
        process.kill(pid, "SIGCONT");
        throw err;
      }
      stopped = true;
      NOTE(`paused process ${pid} (SIGSTOP)`);
    },
    async onResume() {
      if (!stopped) return;
      stopped = false;
      signal(pid, "SIGCONT");
      NOTE(`resumed process ${pid} (SIGCONT): the migration failed before the decision`);
    },
    committedNote: () =>
      `process ${pid} stays stopped (SIGSTOP): the destination owns the guest now; kill it, do not SIGCONT it`,
    close: () => {},
  };
}

function signal(pid: number, sig: "SIGSTOP" | "SIGCONT"): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    throw new PagewireError("PAUSE_FAILED", `${sig} to process ${pid}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * SIGSTOP is asynchronous: a thread running on another core stops a moment later. Waits
 * until every thread of `pid` shows state T in /proc (where there is no /proc, returns).
 */
async function untilStopped(pid: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT" && !procMounted()) return;
      throw new PagewireError("PAUSE_FAILED", `process ${pid} is gone (it exited at the pause?)`, { cause: err });
    }
    const running = tasks.filter((t) => {
      try {
        // "pid (comm) S …": the state follows the last ')' (comm may hold spaces and parentheses)
        const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, "utf8");
        return !/^[Tt]$/.test(stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3));
      } catch {
        return false; // a thread that exited meanwhile writes nothing more
      }
    });
    if (running.length === 0) return;
    if (Date.now() > deadline)
      throw new PagewireError("PAUSE_FAILED", `process ${pid} did not stop within ${timeoutMs} ms of SIGSTOP`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

function procMounted(): boolean {
  try {
    readdirSync("/proc/self/task");
    return true;
  } catch {
    return false;
  }
}

async function qmpPause(socket: string): Promise<GuestPause> {
  const qmp = await QmpClient.connect(socket);
  let paused = false;
  return {
    what: `QEMU on ${socket} (QMP stop)`,
    verify: false,
    async onPause() {
      // a guest already paused by someone else is neither stopped nor resumed here
      const { running, status } = await qmp.queryStatus();
      if (!running) {
        NOTE(`QEMU on ${socket} was already '${status}': not stopped by send`);
        return;
      }
      await qmp.stop();
      paused = true;
      NOTE(`paused QEMU on ${socket} (QMP stop)`);
    },
    async onResume() {
      if (!paused) return;
      paused = false;
      await qmp.cont();
      NOTE(`resumed QEMU on ${socket} (QMP cont): the migration failed before the decision`);
    },
    committedNote: () =>
      paused ? `QEMU on ${socket} stays paused: the destination owns the guest now; do not 'cont' it` : null,
    close: () => qmp.close(),
  };
}

function commandPause(pauseCmd: string, resumeCmd: string): GuestPause {
  let paused = false;
  return {
    what: `--pause-cmd '${pauseCmd}'`,
    verify: true,
    async onPause() {
      await shell(pauseCmd, "--pause-cmd");
      paused = true;
    },
    async onResume() {
      if (!paused) return;
      paused = false;
      await shell(resumeCmd, "--resume-cmd");
    },
    committedNote: () => null,
    close: () => {},
  };
}

/** Runs CMD with /bin/sh; its stdout goes to stderr (stdout carries the report). */
function shell(cmd: string, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("/bin/sh", ["-c", cmd], { stdio: ["ignore", process.stderr, "inherit"] });
    child.on("error", (err) =>
      reject(new PagewireError("PAUSE_FAILED", `${what} '${cmd}': ${err.message}`, { cause: err })),
    );
    child.on("exit", (code, sig) =>
      code === 0
        ? resolve()
        : reject(new PagewireError("PAUSE_FAILED", `${what} '${cmd}' failed (exit ${code ?? sig})`)),
    );
  });
}

/**
 * Watches the file across the pause, for a writer that a pause did not stop. A content
 * re-scan right after the final harvest (repeated for `windowMs`) sees writes through a
 * mapping; the file's mtime, taken at the pause and again once the final round is sent
 * (the device-state step, just before COMPLETE), sees write() calls over the whole round.
 * Either aborts the migration before the decision with `changed(detail)`.
 */
export class PauseCheck {
  #mtime: bigint | null = null;

  constructor(
    readonly file: string,
    readonly windowMs: number,
    readonly changed: (detail: string) => PagewireError,
  ) {}

  /** `log`, whose first harvest after the pause checks the file (the final one). */
  wrap(log: DirtyLog, k: Kernel, pageCount: number): DirtyLog {
    return {
      start: (session) => log.start(session),
      harvest: async (into) => {
        await log.harvest(into);
        if (this.#mtime === null) return; // not paused yet
        const again = new DirtyBitmap(k, pageCount);
        try {
          for (const t0 = performance.now(); ; await new Promise((r) => setTimeout(r, 5))) {
            await log.harvest(again);
            const n = again.count();
            if (n > 0) throw this.changed(`${n} pages changed between two scans after the pause`);
            if (performance.now() - t0 >= this.windowMs) break;
          }
        } finally {
          again.dispose();
        }
        this.#checkMtime();
      },
      stop: () => log.stop(),
      ...(log.observe ? { observe: (pages, contents) => log.observe!(pages, contents) } : {}),
      ...(log.peek ? { peek: (into) => log.peek!(into) } : {}),
      ...(log.pageHashes ? { pageHashes: () => log.pageHashes!() } : {}),
    };
  }

  /** Called once the writer is paused: the next harvest is the final one. */
  atPause(): void {
    this.#mtime = this.#stat();
  }

  /** The device-state step: the final round is sent, COMPLETE comes next. */
  afterFinalRound(): Uint8Array {
    this.#checkMtime();
    return new Uint8Array(0);
  }

  #checkMtime(): void {
    if (this.#mtime !== null && this.#stat() !== this.#mtime)
      throw this.changed("it was modified after the pause (mtime)");
  }

  #stat(): bigint {
    return statSync(this.file, { bigint: true }).mtimeNs;
  }
}
