// Guest memory in a file (Node only): a QEMU guest's RAM file (memory-backend-file with
// share=on), a memory image, or the output of a receiver. Pages are read in windows
// straight into the caller's buffer (a view of kernel memory in the engine) with
// fs.readSync; nothing is cached, so a process writing the file meanwhile is seen.
//
// As a destination, `FileMemory.createTemporary(path, pages)` writes to a temporary file
// beside `path` and renames it over `path` only on commit: a failed migration never
// leaves a file that looks complete. The temporary has a random name and is created
// exclusively without following symlinks (a file or link planted there makes creation
// fail instead of redirecting the writes), mode 0600, on first use (so a handshake that
// fails after the page count was read creates nothing).
import { randomBytes } from "node:crypto";
import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  linkSync,
  lstatSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { PagewireError, PagewireRangeError } from "../errors.js";
import type { DirtyBitmap } from "../kernel/dirty-bitmap.js";
import { PAGE_SIZE, type Kernel } from "../kernel/kernel.js";
import type { DirtyLog, GuestMemory } from "./guest-memory.js";
import { FileScanWorkers, scanWorkerCount } from "./file-scan-workers.js";
import { HashDirtyLog, type PageRangeReader } from "./hash-dirty-log.js";

export interface FileDirtyLogOptions {
  /**
   * Threads that scan the file at each harvest (file-scan-workers.ts), one file read each;
   * 1: the scan runs on the calling thread. Default: the cores available (at most 8), on a
   * kernel with shared memory, and no more than the file has 4 MiB chunks; otherwise 1.
   */
  scanWorkers?: number;
  /**
   * Scan workers the caller started on this file (FileScanWorkers.start) and closes itself:
   * stop() leaves them running (ending threads costs CPU; migrate-qemu closes its pool after
   * the guest runs again, not while it is paused). Replaces scanWorkers.
   */
  scanPool?: FileScanWorkers;
}

export interface TemporaryOptions {
  /** commit() may replace an existing file at the final path (keeping its mode); default false. */
  replace?: boolean;
  /** The temporary's file name in the final path's directory (default `.NAME.partial-` + 16 random hex digits). */
  name?: string;
}

/** Where a destination keeps received memory whose migration is in doubt (see `pagewire resolve`). */
export function inDoubtPath(path: string): string {
  return `${path}.in-doubt`;
}

/** The prefix of a destination's temporary names for `path` (its random part follows). */
export function temporaryPrefix(path: string): string {
  return `.${basename(path)}.partial-`;
}

export class FileMemory implements GuestMemory, PageRangeReader {
  readonly path: string;
  readonly pageCount: number;
  #fd: number;
  #final: string | null;
  #replace = false;
  /** A destination's temporary is created on first use (#fd is -1 until then); true once this object created it. */
  #created = false;
  #closed = false;
  #committed = false;
  /** prepare() gave the memory its in-doubt name. */
  #prepared = false;

  private constructor(path: string, fd: number, pageCount: number, final: string | null) {
    this.path = path;
    this.#fd = fd;
    this.pageCount = pageCount;
    this.#final = final;
  }

  /** Opens an existing file; its size must be a whole number of pages. */
  static open(path: string, options: { writable?: boolean } = {}): FileMemory {
    let fd: number;
    try {
      fd = openSync(path, options.writable ? "r+" : "r");
    } catch (cause) {
      throw new PagewireError("FILE_OPEN", `cannot open memory file ${path}: ${(cause as Error).message}`, { cause });
    }
    const size = fstatSync(fd).size;
    if (size === 0 || size % PAGE_SIZE !== 0) {
      closeSync(fd);
      throw new PagewireRangeError(
        "FILE_SIZE",
        `memory file ${path} has ${size} bytes, not a positive multiple of ${PAGE_SIZE}`,
      );
    }
    return new FileMemory(path, fd, size / PAGE_SIZE, null);
  }

  /**
   * A destination memory: a temporary file of `pageCount` zero pages beside `path`,
   * renamed to `path` by commit(). The file is created on first use.
   */
  static createTemporary(path: string, pageCount: number, options: TemporaryOptions = {}): FileMemory {
    const name = options.name ?? temporaryPrefix(path) + randomBytes(8).toString("hex");
    const m = new FileMemory(join(dirname(path), name), -1, pageCount, path);
    m.#replace = options.replace ?? false;
    return m;
  }

  /**
   * Removes temporaries a killed receiver left for `path` (call only while holding the
   * lock on `path`, so that no live receiver owns them); returns their paths.
   */
  static removeTemporaries(path: string): string[] {
    const dir = dirname(path);
    const prefix = temporaryPrefix(path);
    const removed: string[] = [];
    for (const name of readdirSync(dir)) {
      if (!name.startsWith(prefix)) continue;
      try {
        unlinkSync(join(dir, name));
        removed.push(join(dir, name));
      } catch {
        // gone meanwhile
      }
    }
    return removed;
  }

  /** The open file descriptor, creating a destination's temporary on first use. */
  #file(): number {
    if (this.#fd >= 0) return this.#fd;
    if (this.#closed || !this.#final) throw new PagewireError("FILE_CLOSED", `memory file ${this.path} is closed`);
    let fd: number;
    try {
      // O_EXCL: never reuse an existing file; O_NOFOLLOW: never write through a symlink
      fd = openSync(this.path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    } catch (cause) {
      throw new PagewireError("FILE_CREATE", `cannot create temporary ${this.path}: ${(cause as Error).message}`, {
        cause,
      });
    }
    this.#fd = fd;
    this.#created = true;
    try {
      ftruncateSync(fd, this.pageCount * PAGE_SIZE);
    } catch (cause) {
      this.discardSync();
      throw new PagewireError(
        "FILE_CREATE",
        `cannot size temporary ${this.path} to ${this.pageCount * PAGE_SIZE} bytes: ${(cause as Error).message}`,
        { cause },
      );
    }
    return fd;
  }

  readPages(pages: ArrayLike<number>, out: Uint8Array): void {
    // consecutive pages in one read
    let i = 0;
    while (i < pages.length) {
      let j = i + 1;
      while (j < pages.length && pages[j] === pages[j - 1] + 1) j++;
      this.readRange(pages[i], j - i, out.subarray(i * PAGE_SIZE, j * PAGE_SIZE));
      i = j;
    }
  }

  /** Reads `count` pages from page `first` into `into`. */
  readRange(first: number, count: number, into: Uint8Array): void {
    if (first < 0 || first + count > this.pageCount)
      throw new PagewireRangeError(
        "PAGE_INDEX",
        `FileMemory: pages [${first}, ${first + count}) are outside 0..${this.pageCount}`,
      );
    let done = 0;
    const bytes = count * PAGE_SIZE;
    while (done < bytes) {
      const n = readSync(this.#file(), into, done, bytes - done, first * PAGE_SIZE + done);
      if (n === 0)
        throw new PagewireError(
          "FILE_SHORT",
          `memory file ${this.path} ended at ${first * PAGE_SIZE + done} bytes (shrunk while reading?)`,
        );
      done += n;
    }
  }

  writePage(page: number, data: Uint8Array): void {
    if (page < 0 || page >= this.pageCount)
      throw new PagewireRangeError("PAGE_INDEX", `FileMemory: page ${page} is outside 0..${this.pageCount}`);
    let done = 0;
    while (done < PAGE_SIZE) done += writeSync(this.#file(), data, done, PAGE_SIZE - done, page * PAGE_SIZE + done);
  }

  pageView(): Uint8Array | null {
    return null;
  }

  async flush(): Promise<void> {
    fsyncSync(this.#file());
  }

  /**
   * Destination: makes the received memory the file at its final path (after the digest
   * was verified). Without `replace`, a file that appeared at the final path meanwhile is
   * kept and so is the temporary (OUT_EXISTS names it): the source has already handed
   * over, so the received memory must not be lost. With `replace`, the replaced file's
   * mode is kept.
   */
  async commit(): Promise<void> {
    const final = this.#final;
    if (!final) return;
    const fd = this.#file();
    if (this.#replace) {
      const old = lstatOrNull(final);
      if (old?.isFile()) fchmodSync(fd, old.mode & 0o7777);
    }
    fsyncSync(fd);
    if (this.#replace) renameSync(this.path, final);
    else {
      try {
        linkSync(this.path, final); // fails if final exists: no silent replacement
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "EEXIST" || lstatOrNull(final)) {
          this.#final = null; // keep the temporary: it holds the only copy
          throw new PagewireError(
            "OUT_EXISTS",
            `${final} appeared during the migration and was left alone; the received memory is in ${this.path}`,
          );
        }
        renameSync(this.path, final); // a file system without hard links
      }
      unlinkSync(this.path);
    }
    this.#unprepare(final);
    this.#final = null;
    this.#committed = true;
    syncDirectory(dirname(final));
  }

  /** True once commit() has put a destination's memory at its final path. */
  get committed(): boolean {
    return this.#committed;
  }

  /** Destination: removes the temporary file of a failed migration. */
  async discard(): Promise<void> {
    this.discardSync();
  }

  /** discard() for exit and signal handlers, which cannot wait. */
  discardSync(): void {
    if (!this.#final) return;
    this.#unprepare(this.#final);
    this.close();
    if (this.#created) {
      try {
        unlinkSync(this.path);
      } catch {
        // already gone
      }
    }
    this.#final = null;
  }

  /**
   * Destination prepared (or running in post-copy): makes the received memory findable at
   * `inDoubtPath(final)` with a note beside it, as a second name of the same file, so that
   * if this process dies the memory survives for `pagewire resolve` (a stale-lock takeover
   * removes only temporaries). commit() and discard() remove that name again.
   */
  async prepare(note: { postcopy: boolean; missingPages: number }): Promise<void> {
    const final = this.#final;
    if (!final || this.#prepared) return;
    fsyncSync(this.#file());
    // the note first: a crash in between leaves a note without memory, which is ignored
    this.#writeNote({ ...note, reason: "the receiver was prepared when it stopped" });
    linkSync(this.path, inDoubtPath(final)); // fails if one is there already: an earlier migration's is not replaced
    this.#prepared = true;
    syncDirectory(dirname(final));
  }

  /**
   * Destination in doubt: keeps the received memory at `inDoubtPath(final)` (never replacing
   * a file there) with a note beside it, for `pagewire resolve` to commit or discard.
   * Returns the kept path.
   */
  keepInDoubt(note: { missingPages: number; reason: string }): string {
    const final = this.#final;
    if (!final) throw new PagewireError("FILE_CLOSED", `memory file ${this.path} has no destination to keep`);
    fsyncSync(this.#file());
    const kept = inDoubtPath(final);
    if (!this.#prepared) linkSync(this.path, kept); // fails if one is there already
    unlinkSync(this.path);
    this.#writeNote({ postcopy: note.missingPages > 0, ...note });
    this.#final = null;
    this.#prepared = false;
    syncDirectory(dirname(final));
    return kept;
  }

  #writeNote(note: object): void {
    const kept = inDoubtPath(this.#final!);
    const tmp = `${kept}.json.${process.pid}`;
    writeFileSync(tmp, JSON.stringify({ ...note, pageCount: this.pageCount, replace: this.#replace }) + "\n", {
      mode: 0o600,
      flag: "wx",
    });
    renameSync(tmp, `${kept}.json`);
  }

  /** Removes the in-doubt name and note prepare() made (the migration settled here). */
  #unprepare(final: string): void {
    if (!this.#prepared) return;
    for (const f of [inDoubtPath(final), `${inDoubtPath(final)}.json`]) {
      try {
        unlinkSync(f);
      } catch {
        // already gone
      }
    }
    this.#prepared = false;
  }

  /** Removes an in-doubt note whose memory is not there (a receiver killed while preparing). */
  static removeOrphanNote(path: string): void {
    if (lstatOrNull(inDoubtPath(path))) return;
    try {
      unlinkSync(`${inDoubtPath(path)}.json`);
    } catch {
      // none
    }
  }

  /**
   * Settles memory kept in doubt for `path`: "commit" puts it at `path` (never over an
   * existing file unless it was received with replace), "abort" removes it. Refuses to
   * commit memory that still misses pages (a post-copy cut short).
   */
  static resolveInDoubt(path: string, decision: "commit" | "abort"): void {
    const kept = inDoubtPath(path);
    let note: { missingPages?: number; postcopy?: boolean; replace?: boolean };
    if (!lstatOrNull(kept)) {
      FileMemory.removeOrphanNote(path);
      throw new PagewireError("NOT_IN_DOUBT", `no migration in doubt for ${path} (no ${kept})`);
    }
    try {
      note = JSON.parse(readFileSync(`${kept}.json`, "utf8"));
    } catch (cause) {
      throw new PagewireError("NOT_IN_DOUBT", `${kept} has no readable note ${kept}.json`, { cause });
    }
    if (decision === "abort") {
      unlinkSync(kept);
    } else {
      if ((note.missingPages ?? 0) > 0 || (note.postcopy && note.missingPages === undefined))
        throw new PagewireError(
          "RESOLVE_REFUSED",
          `${kept} still misses ${note.missingPages} pages (post-copy was cut short): it cannot be committed`,
        );
      if (note.replace) renameSync(kept, path);
      else {
        try {
          linkSync(kept, path);
        } catch (cause) {
          throw new PagewireError("OUT_EXISTS", `${path} exists; the received memory stays in ${kept}`, { cause });
        }
        unlinkSync(kept);
      }
    }
    unlinkSync(`${kept}.json`);
    syncDirectory(dirname(path));
  }

  /** True once a destination's temporary exists on disk (it is created on first use). */
  get created(): boolean {
    return this.#created;
  }

  /**
   * A dirty log by exact hash scan: each harvest reads the whole file once and reports
   * the pages whose XXH3-128 changed (for RAM files of guests that have no dirty log).
   * The baseline is taken at start() with the session's digest seed, on the calling
   * thread; harvests run on `scanWorkers` threads (started at start(), stopped by stop())
   * or on the caller's `scanPool`.
   */
  hashDirtyLog(kernel: Kernel, options: FileDirtyLogOptions = {}): DirtyLog {
    const given = options.scanPool ?? null;
    if (given && (given.path !== this.path || given.pageCount !== this.pageCount || given.kernel !== kernel))
      throw new PagewireError(
        "SCANNER_MISMATCH",
        `scan pool of ${given.path} (${given.pageCount} pages${given.kernel === kernel ? "" : ", another kernel"}) given to the log of ${this.path} (${this.pageCount} pages)`,
      );
    const workers = given ? given.count : scanWorkerCount(kernel, this.pageCount, options.scanWorkers);
    let log: HashDirtyLog | null = null;
    let pool: Promise<FileScanWorkers> | null = given ? Promise.resolve(given) : null;
    const started = () => {
      if (!log) throw new PagewireError("NOT_STARTED", `hash dirty log of ${this.path} used before start()`);
      return log;
    };
    return {
      start: (session) => {
        log?.dispose();
        log = new HashDirtyLog(kernel, this, this.pageCount, { seed: session?.digestSeed });
        if (workers > 1 && !pool) {
          pool = FileScanWorkers.start(kernel, this.path, this.pageCount, workers);
          pool.catch(() => {}); // the first harvest raises it
        }
      },
      harvest: async (into: DirtyBitmap) => {
        if (pool) await started().harvestOn(await pool, into);
        else started().harvest(into);
      },
      observe: (pages: ArrayLike<number>, contents: Uint8Array) => log?.observe(pages, contents),
      pageHashes: () => log?.pageHashes() ?? null,
      stop: () => {
        log?.dispose();
        log = null;
        if (given) return; // the caller's to close
        void pool?.then(
          (p) => p.close(),
          () => {},
        );
        pool = null;
      },
    };
  }

  close(): void {
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
    this.#closed = true;
  }
}

function lstatOrNull(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

/** Makes a rename durable (best effort: not every platform can fsync a directory). */
function syncDirectory(dir: string): void {
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // not supported here
  }
}
