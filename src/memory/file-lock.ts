// An exclusive lock on an output path between pagewire processes, without native code:
// a lock file `.NAME.lock` beside the path, created with O_EXCL and holding the owner's
// PID. A lock whose PID no longer runs (its owner was killed) is taken over. Advisory
// only: it keeps pagewire receivers apart, not other programs.
import { closeSync, constants, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { PagewireError } from "../errors.js";

/** A held lock; release() removes the lock file (idempotent, safe in exit handlers). */
export interface FileLock {
  readonly path: string;
  /** The PID of the dead process whose lock was taken over, if any. */
  readonly staleOwner: number | null;
  release(): void;
}

/** The lock file that guards `path`. */
export function lockPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.lock`);
}

/**
 * Takes the lock on `path`, or throws LOCK_HELD naming the live owner's PID. A lock left
 * by a dead process is removed and taken once (two processes taking over the same stale
 * lock at the same instant is not guarded against).
 */
export function lockFile(path: string): FileLock {
  const lock = lockPathFor(path);
  let staleOwner: number | null = null;
  for (let attempt = 0; ; attempt++) {
    let fd: number;
    try {
      fd = openSync(lock, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new PagewireError("LOCK_FAILED", `cannot create lock ${lock}: ${(err as Error).message}`, { cause: err });
      }
      const owner = readOwner(lock);
      if (owner === null || isRunning(owner) || attempt > 0) {
        throw new PagewireError(
          "LOCK_HELD",
          `${path} is locked by ${owner === null ? "another process" : `process ${owner}`} (lock ${lock}; remove it if no receiver runs)`,
        );
      }
      staleOwner = owner;
      try {
        unlinkSync(lock);
      } catch {
        // removed by someone else meanwhile: try again
      }
      continue;
    }
    try {
      writeSync(fd, `${process.pid}\n`);
    } finally {
      closeSync(fd);
    }
    let held = true;
    return {
      path: lock,
      staleOwner,
      release() {
        if (!held) return;
        held = false;
        // only our own lock: a lock another process took over after us stays
        if (readOwner(lock) !== process.pid) return;
        try {
          unlinkSync(lock);
        } catch {
          // already gone
        }
      },
    };
  }
}

/** The PID in a lock file, or null when it cannot be read or holds no PID. */
function readOwner(lock: string): number | null {
  try {
    const pid = Number(readFileSync(lock, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // alive, owned by another user
  }
}
