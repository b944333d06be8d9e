// Exact hash-based dirty log: a dirty-page source for guest memory that has no dirty log
// (a RAM file of a running QEMU guest, a memory image being written by someone else).
//
//   baseline: H[i] = XXH3-128(page i)                       (16 bytes per page)
//   harvest:  for every page: h = XXH3-128(page i); h != H[i] -> set bit i; H[i] = h
//
// A page counts as dirty when its content differs from the baseline: the previous scan,
// or what the engine last sent of it (observe() stores the hash of the bytes sent, so a
// page read while changing is compared with what the destination holds). A write of the
// same bytes is not seen — which is what a migration wants. Cost per harvest: one read of all guest memory, in the kernel
// (assembly/pagehash.ts scanChangedPages). Memory outside the kernel is scanned through
// a window copied in (adds one memcpy of the guest). harvestOn() runs the same scan on a
// PageScanner's threads instead (a RAM file: file-scan-workers.ts).
//
// The seed: start() adopts the session's digest seed, so the table of the final scan is
// the one the destination builds as it writes pages and the whole-memory digest needs no
// second pass there.
import { PagewireError, PagewireRangeError } from "../errors.js";
import { PAGE_SIZE } from "../kernel/abi.js";
import { randomSeed, splitSeed } from "../kernel/pagehash.js";
import { DirtyBitmap } from "../kernel/dirty-bitmap.js";
import type { KernelRegion } from "../kernel/heap.js";
import type { Kernel } from "../kernel/kernel.js";

/** Pages per copied window for memory outside the kernel (4 MiB). */
const WINDOW_PAGES = 1024;

/** Memory read in windows by the caller's reader (a RAM file): copies `count` pages from page `first` into `into`. */
export interface PageRangeReader {
  readonly pageCount: number;
  readRange(first: number, count: number, into: Uint8Array): void;
}

/** Guest memory for a scan: a kernel region (zero copy, survives memory growth), any byte array, or a range reader. */
export type ScannedMemory = KernelRegion | Uint8Array | PageRangeReader;

function isReader(m: ScannedMemory): m is PageRangeReader {
  return typeof (m as PageRangeReader).readRange === "function";
}

export interface HashDirtyLogOptions {
  /** XXH3 seed until start() gives the session's; default random (so content cannot be crafted to hide a change). */
  seed?: bigint;
}

/** One scan of every page (scanChangedPages over the whole memory), for a PageScanner. */
export interface PageScanJob {
  /** Kernel address of the table: 16 bytes per page, compared with and replaced by each page's hash. */
  hashes: number;
  /** Kernel address of the bitmap whose bits of changed pages are set (0: none, a baseline). */
  bits: number;
  seed: bigint;
}

/** Runs a scan elsewhere (other threads) on memory the log's kernel shares with them. */
export interface PageScanner {
  readonly kernel: Kernel;
  readonly pageCount: number;
  /** Returns the number of pages that changed. */
  scanPages(job: PageScanJob): Promise<number>;
}

export class HashDirtyLog {
  readonly kernel: Kernel;
  readonly pageCount: number;
  #seed: bigint;
  readonly #memory: ScannedMemory;
  readonly #hashes: KernelRegion;
  /** The table is the baseline as scanned: no harvest or observe since. */
  #pristine = true;
  /** Harvests done since the baseline. */
  scans = 0;

  /** Hashes every page once (the baseline). Cost: one scan. */
  constructor(kernel: Kernel, memory: ScannedMemory, pageCount: number, options: HashDirtyLogOptions = {}) {
    const bytes =
      memory instanceof Uint8Array ? memory.byteLength : isReader(memory) ? memory.pageCount * PAGE_SIZE : memory.bytes;
    if (!Number.isInteger(pageCount) || pageCount < 0 || pageCount * PAGE_SIZE > bytes) {
      throw new PagewireRangeError(
        "PAGE_COUNT",
        `HashDirtyLog: ${pageCount} pages need ${pageCount * PAGE_SIZE} bytes of memory, got ${bytes}`,
      );
    }
    this.kernel = kernel;
    this.pageCount = pageCount;
    this.#seed = options.seed ?? randomSeed();
    splitSeed(this.#seed); // a bad seed fails here, not at the first scan
    this.#memory = memory;
    this.#hashes = kernel.alloc(Math.max(16, pageCount * 16), 64);
    this.#scan(null);
  }

  /** The XXH3 seed of the table. */
  get seed(): bigint {
    return this.#seed;
  }

  /**
   * Starts tracking (as DirtyLog.start): adopts `session.digestSeed` when given, and takes a new
   * baseline if the seed changed or the log was used since its baseline (one scan, before
   * the rounds). Without a session the log keeps its own seed.
   */
  start(session?: { digestSeed: bigint }): void {
    const seed = session?.digestSeed ?? this.#seed;
    splitSeed(seed);
    if (seed === this.#seed && this.#pristine) return;
    this.#seed = seed;
    this.#scan(null);
    this.#pristine = true;
    this.scans = 0;
  }

  /** The table of the latest scan and its seed (DirtyLog.pageHashes). */
  pageHashes(): { seed: bigint; table: Uint8Array } {
    return { seed: this.#seed, table: this.hashTable() };
  }

  /**
   * Scans all memory and returns the pages whose content changed since the previous scan
   * as a DirtyBitmap (`into`, cleared first, or a new one). Returns the bitmap.
   */
  harvest(into?: DirtyBitmap): DirtyBitmap {
    const bm = this.#bitmap(into, "harvest");
    bm.clearAll();
    this.#scan(bm);
    this.#pristine = false;
    this.scans++;
    return bm;
  }

  /**
   * harvest() on `scanner`'s threads (which must read this log's memory, into this log's
   * kernel): the event loop runs meanwhile, but nothing may observe() until it resolves.
   */
  async harvestOn(scanner: PageScanner, into?: DirtyBitmap): Promise<DirtyBitmap> {
    if (scanner.kernel !== this.kernel || scanner.pageCount !== this.pageCount)
      throw new PagewireError(
        "SCANNER_MISMATCH",
        `HashDirtyLog.harvestOn: the scanner covers ${scanner.pageCount} pages${scanner.kernel === this.kernel ? "" : " of another kernel"}, the log ${this.pageCount}`,
      );
    const bm = this.#bitmap(into, "harvestOn");
    bm.clearAll();
    this.#pristine = false;
    await scanner.scanPages({ hashes: this.#hashes.ptr, bits: bm.region.ptr, seed: this.#seed });
    this.scans++;
    return bm;
  }

  /**
   * Records the content the engine read (and sent) for `pages` (`contents`: their bytes,
   * page after page) as their baseline: the next harvest reports them dirty iff their
   * content differs from what was sent. Without this a page read while changing and
   * changed back before the next scan (A→B→A) would never be resent.
   */
  observe(pages: ArrayLike<number>, contents: Uint8Array): void {
    const k = this.kernel;
    if (contents.byteLength < pages.length * PAGE_SIZE)
      throw new PagewireRangeError(
        "BUFFER_TOO_SHORT",
        `HashDirtyLog.observe: ${pages.length} pages need ${pages.length * PAGE_SIZE} bytes, got ${contents.byteLength}`,
      );
    this.#pristine = false;
    const [lo, hi] = splitSeed(this.#seed);
    const own = k.owns(contents);
    const scratch = own ? null : k.alloc(PAGE_SIZE, 64);
    try {
      for (let i = 0; i < pages.length; i++) {
        const page = pages[i];
        if (page < 0 || page >= this.pageCount)
          throw new PagewireRangeError(
            "PAGE_INDEX",
            `HashDirtyLog.observe: page ${page} is outside 0..${this.pageCount}`,
          );
        let ptr: number;
        if (scratch) {
          k.bytes(scratch).set(contents.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
          ptr = scratch.ptr;
        } else {
          ptr = contents.byteOffset + i * PAGE_SIZE;
        }
        // the scan kernel with mark = 0 just stores the page's hash as its baseline
        k.raw.scanChangedPages(ptr, 1, this.#hashes.ptr + page * 16, 0, 0, 0, lo, hi);
      }
    } finally {
      if (scratch) k.free(scratch);
    }
  }

  /** The per-page XXH3-128 table of the latest scan (16 bytes per page; a kernel view, valid until the next allocation). */
  hashTable(): Uint8Array {
    return new Uint8Array(this.kernel.memory.buffer, this.#hashes.ptr, this.pageCount * 16);
  }

  dispose(): void {
    this.kernel.free(this.#hashes);
  }

  #bitmap(into: DirtyBitmap | undefined, what: string): DirtyBitmap {
    const bm = into ?? new DirtyBitmap(this.kernel, this.pageCount);
    if (bm.pageCount !== this.pageCount || bm.kernel !== this.kernel)
      throw new PagewireRangeError(
        "BITMAP_MISMATCH",
        `HashDirtyLog.${what}: bitmap has ${bm.pageCount} pages${bm.kernel === this.kernel ? "" : " of another kernel"}, memory ${this.pageCount}`,
      );
    return bm;
  }

  #scan(bm: DirtyBitmap | null): number {
    const k = this.kernel;
    const [lo, hi] = splitSeed(this.#seed);
    const bits = bm ? bm.region.ptr : 0;
    const mark = bm ? 1 : 0;
    const m = this.#memory;
    if (!isReader(m) && (!(m instanceof Uint8Array) || k.owns(m))) {
      const ptr = m instanceof Uint8Array ? m.byteOffset : m.ptr;
      return k.raw.scanChangedPages(ptr, this.pageCount, this.#hashes.ptr, bits, 0, mark, lo, hi) >>> 0;
    }
    // foreign memory: copy windows into kernel scratch
    const win = k.alloc(WINDOW_PAGES * PAGE_SIZE, 64);
    try {
      let changed = 0;
      for (let first = 0; first < this.pageCount; first += WINDOW_PAGES) {
        const n = Math.min(WINDOW_PAGES, this.pageCount - first);
        if (isReader(m)) m.readRange(first, n, k.bytes(win).subarray(0, n * PAGE_SIZE));
        else k.bytes(win).set(m.subarray(first * PAGE_SIZE, (first + n) * PAGE_SIZE));
        changed += k.raw.scanChangedPages(win.ptr, n, this.#hashes.ptr + first * 16, bits, first, mark, lo, hi) >>> 0;
      }
      return changed;
    } finally {
      k.free(win);
    }
  }
}
