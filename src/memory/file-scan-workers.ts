// A hash scan of a RAM file spread over Worker threads (Node only): each worker has its own
// kernel on an arena of the main kernel's shared memory and its own descriptor of the file
// (file-scan-worker.ts). A scan hands every worker the same job; they take 4 MiB chunks of
// pages from a shared counter until none are left (a worker slowed by other load takes
// fewer), read each chunk into their arena and run the scan kernel straight into the main
// thread's hash table and dirty bitmap. Chunks are whole bitmap words, so no two workers
// write the same word. The main thread only waits: with N cores a scan takes about 1/N of
// the single-threaded time, up to the memory bandwidth.
import { availableParallelism } from "node:os";
import { PagewireError, PagewireRangeError, type PagewireErrorCode } from "../errors.js";
import { splitSeed } from "../kernel/pagehash.js";
import type { Kernel, KernelArena } from "../kernel/kernel.js";
import { startWorker, type WorkerHandle } from "../util/worker.js";
import type { PageScanner, PageScanJob } from "./hash-dirty-log.js";

/** Pages a worker takes at a time: 4 MiB, a multiple of 32 (whole bitmap words). */
export const SCAN_CHUNK_PAGES = 1024;
/** Pages a worker reads into its arena at a time (1 MiB: stays in cache until hashed). */
export const SCAN_WINDOW_PAGES = 256;
const MAX_WORKERS = 64;
/** The default's cap: a scan is bound by memory bandwidth long before this many cores. */
const DEFAULT_MAX_WORKERS = 8;

/**
 * How many scan workers to use for `pageCount` pages: `asked` (checked), or by default the
 * cores available up to 8 on a kernel with shared memory, else 1; never more than the file
 * has chunks. 1 means: scan on the calling thread.
 */
export function scanWorkerCount(kernel: Kernel, pageCount: number, asked?: number): number {
  const chunks = Math.max(1, Math.ceil(pageCount / SCAN_CHUNK_PAGES));
  if (asked === undefined) return kernel.shared ? Math.min(availableParallelism(), DEFAULT_MAX_WORKERS, chunks) : 1;
  if (!Number.isInteger(asked) || asked < 1 || asked > MAX_WORKERS)
    throw new PagewireRangeError("SCAN_WORKERS", `scan workers must be an integer in 1..${MAX_WORKERS}, got ${asked}`);
  if (asked > 1 && !kernel.shared)
    throw new PagewireError("SHARED_UNAVAILABLE", `${asked} scan workers need a kernel on shared memory`);
  return Math.min(asked, chunks);
}

/** Main thread → scan worker. */
export type ToScanWorker =
  | { op: "init"; index: number; arena: KernelArena; path: string; pageCount: number; next: SharedArrayBuffer }
  | { op: "scan"; hashes: number; bits: number; mark: 0 | 1; seedLo: number; seedHi: number };

/** Scan worker → main thread. */
export type FromScanWorker =
  | { op: "ready" }
  | { op: "scanned"; changed: number }
  | { op: "error"; code: string; message: string };

/** The worker script: next to this module in the build; from the sources (tests), the build's copy. */
function scanWorkerUrl(): URL {
  const here = import.meta.url;
  return here.endsWith(".ts")
    ? new URL("../../dist/memory/file-scan-worker.js", here)
    : new URL("./file-scan-worker.js", here);
}

interface Waiting {
  left: number;
  changed: number;
  resolve: (changed: number) => void;
  reject: (e: PagewireError) => void;
}

export class FileScanWorkers implements PageScanner {
  readonly kernel: Kernel;
  readonly path: string;
  readonly pageCount: number;
  readonly #workers: WorkerHandle[];
  readonly #arenas: KernelArena[];
  /** The next unclaimed page of the running scan (Atomics.add by the workers). */
  readonly #next: Int32Array;
  #waiting: Waiting | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #error: PagewireError | null = null;
  #closed = false;

  private constructor(kernel: Kernel, path: string, pageCount: number, workers: WorkerHandle[]) {
    this.kernel = kernel;
    this.path = path;
    this.pageCount = pageCount;
    this.#workers = workers;
    this.#arenas = [];
    this.#next = new Int32Array(new SharedArrayBuffer(4));
  }

  /**
   * Starts `count` workers scanning the file at `path` (`pageCount` pages) into tables and
   * bitmaps of `kernel`'s memory, which must be shared. Resolves once every worker has its
   * kernel and the file open.
   */
  static async start(kernel: Kernel, path: string, pageCount: number, count: number): Promise<FileScanWorkers> {
    if (!Number.isInteger(count) || count < 1 || count > MAX_WORKERS)
      throw new PagewireRangeError(
        "SCAN_WORKERS",
        `scan workers must be an integer in 1..${MAX_WORKERS}, got ${count}`,
      );
    if (!kernel.shared)
      throw new PagewireError(
        "SHARED_UNAVAILABLE",
        "scan workers need a kernel on shared memory (createKernel({ shared: true }))",
      );
    const started = await Promise.allSettled(Array.from({ length: count }, () => startWorker(scanWorkerUrl())));
    const workers = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
    const failed = started.find((s) => s.status === "rejected") as PromiseRejectedResult | undefined;
    if (failed) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw new PagewireError("SCAN_WORKER", `cannot start scan workers: ${(failed.reason as Error).message}`, {
        cause: failed.reason,
      });
    }
    const pool = new FileScanWorkers(kernel, path, pageCount, workers);
    try {
      await pool.#init();
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  /** Workers in the pool. */
  get count(): number {
    return this.#workers.length;
  }

  /** Runs one scan of every page on the workers; scans asked for meanwhile wait their turn. */
  scanPages(job: PageScanJob): Promise<number> {
    const run = this.#queue.then(() => this.#scan(job));
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Stops the workers and returns their arenas (a running scan fails). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#fail(new PagewireError("SCAN_WORKER", "scan workers closed"));
    await Promise.all(this.#workers.map((w) => w.terminate()));
    for (const a of this.#arenas) this.kernel.freeArena(a);
    this.#arenas.length = 0;
  }

  async #init(): Promise<void> {
    const ready = new Promise<number>((resolve, reject) => {
      this.#waiting = { left: this.#workers.length, changed: 0, resolve, reject };
    });
    this.#workers.forEach((w, i) => {
      w.onMessage((m) => this.#onMessage(i, m as FromScanWorker));
      w.onFailure((err) => this.#fail(new PagewireError("SCAN_WORKER", `scan worker ${i} failed: ${err.message}`)));
      // the window it reads into plus its hashing scratch
      const arena = this.kernel.arena(SCAN_WINDOW_PAGES * 4096 + 4096);
      this.#arenas.push(arena);
      const init: ToScanWorker = {
        op: "init",
        index: i,
        arena,
        path: this.path,
        pageCount: this.pageCount,
        next: this.#next.buffer as SharedArrayBuffer,
      };
      w.post(init);
    });
    await ready;
    for (const w of this.#workers) w.keepAlive(false); // idle workers do not hold the process
  }

  async #scan(job: PageScanJob): Promise<number> {
    if (this.#error) throw this.#error;
    const [seedLo, seedHi] = splitSeed(job.seed);
    Atomics.store(this.#next, 0, 0);
    const done = new Promise<number>((resolve, reject) => {
      this.#waiting = { left: this.#workers.length, changed: 0, resolve, reject };
    });
    const m: ToScanWorker = { op: "scan", hashes: job.hashes, bits: job.bits, mark: job.bits ? 1 : 0, seedLo, seedHi };
    for (const w of this.#workers) {
      w.keepAlive(true);
      w.post(m);
    }
    try {
      return await done;
    } finally {
      for (const w of this.#workers) w.keepAlive(false);
    }
  }

  #onMessage(index: number, m: FromScanWorker): void {
    if (m.op === "error") {
      this.#fail(new PagewireError(m.code as PagewireErrorCode, `scan worker ${index}: ${m.message}`));
      return;
    }
    const w = this.#waiting;
    if (!w) return;
    if (m.op === "scanned") w.changed += m.changed;
    if (--w.left === 0) {
      this.#waiting = null;
      w.resolve(w.changed);
    }
  }

  #fail(e: PagewireError): void {
    this.#error ??= e;
    const w = this.#waiting;
    this.#waiting = null;
    w?.reject(this.#error);
  }
}
