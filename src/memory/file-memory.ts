// Guest memory in a file (Node only): a QEMU guest's RAM file (memory-backend-file with
// share=on), a memory image, or the output of a receiver. Pages are read in windows
// straight into the caller's buffer (a view of kernel memory in the engine) with
// fs.readSync; nothing is cached, so a process writing the file meanwhile is seen.
//
// As a destination, `FileMemory.createTemporary(path, pages)` writes to a temporary file
// beside `path` and renames it over `path` only on commit: a failed migration never
// leaves a file that looks complete.
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { PagewireError, PagewireRangeError } from "../errors.js";
import { DirtyBitmap } from "../kernel/dirty-bitmap.js";
import { PAGE_SIZE, type Kernel } from "../kernel/kernel.js";
import type { DirtyLog, GuestMemory } from "./guest-memory.js";
import { HashDirtyLog, type PageRangeReader } from "./hash-dirty-log.js";

export class FileMemory implements GuestMemory, PageRangeReader {
  readonly path: string;
  readonly pageCount: number;
  #fd: number;
  #final: string | null;

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
      throw new PagewireRangeError("FILE_SIZE", `memory file ${path} has ${size} bytes, not a positive multiple of ${PAGE_SIZE}`);
    }
    return new FileMemory(path, fd, size / PAGE_SIZE, null);
  }

  /** A destination memory: a temporary file of `pageCount` zero pages, renamed to `path` by commit(). */
  static createTemporary(path: string, pageCount: number): FileMemory {
    const tmp = join(dirname(path), `.${basename(path)}.partial-${process.pid}-${Date.now()}`);
    const fd = openSync(tmp, "w+", 0o600);
    ftruncateSync(fd, pageCount * PAGE_SIZE);
    return new FileMemory(tmp, fd, pageCount, path);
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
    if (first < 0 || first + count > this.pageCount) throw new PagewireRangeError("PAGE_INDEX", `FileMemory: pages [${first}, ${first + count}) are outside 0..${this.pageCount}`);
    let done = 0;
    const bytes = count * PAGE_SIZE;
    while (done < bytes) {
      const n = readSync(this.#fd, into, done, bytes - done, first * PAGE_SIZE + done);
      if (n === 0) throw new PagewireError("FILE_SHORT", `memory file ${this.path} ended at ${first * PAGE_SIZE + done} bytes (shrunk while reading?)`);
      done += n;
    }
  }

  writePage(page: number, data: Uint8Array): void {
    if (page < 0 || page >= this.pageCount) throw new PagewireRangeError("PAGE_INDEX", `FileMemory: page ${page} is outside 0..${this.pageCount}`);
    let done = 0;
    while (done < PAGE_SIZE) done += writeSync(this.#fd, data, done, PAGE_SIZE - done, page * PAGE_SIZE + done);
  }

  pageView(): Uint8Array | null {
    return null;
  }

  async flush(): Promise<void> {
    fsyncSync(this.#fd);
  }

  /** Destination: makes the received memory the file at its final path (after the digest was verified). */
  async commit(): Promise<void> {
    if (!this.#final) return;
    fsyncSync(this.#fd);
    renameSync(this.path, this.#final);
    this.#final = null;
  }

  /** Destination: removes the temporary file of a failed migration. */
  async discard(): Promise<void> {
    if (!this.#final) return;
    this.close();
    try {
      unlinkSync(this.path);
    } catch {
      // already gone
    }
    this.#final = null;
  }

  /**
   * A dirty log by exact hash scan: each harvest reads the whole file once and reports
   * the pages whose XXH3-128 changed (for RAM files of guests that have no dirty log).
   */
  hashDirtyLog(kernel: Kernel): DirtyLog {
    let log: HashDirtyLog | null = null;
    return {
      start: () => {
        log?.dispose();
        log = new HashDirtyLog(kernel, this, this.pageCount);
      },
      harvest: (into: DirtyBitmap) => void log!.harvest(into),
      observe: (pages: ArrayLike<number>, contents: Uint8Array) => log?.observe(pages, contents),
      pageHashes: () => (log ? { seed: log.seed, table: log.hashTable() } : null),
      stop: () => {
        log?.dispose();
        log = null;
      },
    };
  }

  close(): void {
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
  }
}
