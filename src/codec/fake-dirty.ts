// Fake-dirty filter: a page reported dirty whose content equals what was last sent for it
// (written back with the same bytes, or changed and changed back) is skipped.
//
//   per page: known byte + XXH3-128(last sent content, migration seed)   (16 bytes + 1 byte,
//             kernel memory: the decision is assembly/fake-dirty.ts, shared with the encode
//             pipeline kernel)
//   filter(dirty pages): hash them; unchanged & known -> skipped-unchanged; else -> send,
//                        and the new hash becomes "last sent"
//
// The seed is random per migration (design: decisions that could lose data use 128-bit
// hashes with a per-migration random seed); the destination's whole-memory digest is the
// backstop. see: Jo et al., "Efficient live migration of virtual machines using shared
// storage" (fake dirty pages); QEMU has no such filter (it resends every dirty page).
import { PagewireRangeError } from "../errors.js";
import { PAGE_SIZE } from "../kernel/abi.js";
import type { KernelRegion } from "../kernel/heap.js";
import type { Kernel } from "../kernel/kernel.js";
import { hashPageList, randomSeed } from "../kernel/pagehash.js";

export interface FakeDirtyFilterOptions {
  /** XXH3 seed; default a fresh random seed (one per migration). */
  seed?: bigint;
}

/** What `filter` decided for one batch of dirty pages. */
export interface FakeDirtyResult {
  /** The dirty pages whose content changed since last sent (ascending if the input was). */
  send: Uint32Array;
  /** XXH3-128 of each page of `send` (low, high): reusable as dedup keys (same seed). */
  hashes: BigUint64Array;
  /** Dirty pages skipped because their content equals what was last sent. */
  skipped: number;
}

/** Where the filter's table lives in kernel memory (assembly/fake-dirty.ts layout). */
export interface FakeDirtyLayout {
  /** 16 bytes per page: the XXH3-128 last sent. */
  hashes: number;
  /** 1 byte per page: 1 once sent. */
  known: number;
}

/** Per-page "last sent" hashes of one guest: 17 bytes per page. */
export class FakeDirtyFilter {
  readonly kernel: Kernel;
  readonly pageCount: number;
  readonly seed: bigint;
  /** Dirty pages skipped since creation (the `skipped-unchanged` counter). */
  skippedUnchanged = 0;
  /** Dirty pages passed through (to be sent) since creation. */
  passed = 0;
  readonly #table: KernelRegion;

  constructor(kernel: Kernel, pageCount: number, options: FakeDirtyFilterOptions = {}) {
    if (!Number.isInteger(pageCount) || pageCount < 0 || pageCount > 0x1000000) {
      throw new PagewireRangeError(
        "PAGE_COUNT",
        `FakeDirtyFilter: page count must be an integer in 0..${0x1000000}, got ${pageCount}`,
      );
    }
    this.kernel = kernel;
    this.pageCount = pageCount;
    this.seed = options.seed ?? randomSeed();
    this.#table = kernel.alloc(Math.max(16, pageCount * 17), 16, true);
  }

  /** Kernel addresses of the hash table and the known bytes. */
  layout(): FakeDirtyLayout {
    return { hashes: this.#table.ptr, known: this.#table.ptr + this.pageCount * 16 };
  }

  /**
   * Splits `dirty` (page indices of `mem`, a whole guest memory; ideally a kernel view)
   * into pages to send and pages skipped as unchanged. Pages to send are recorded as sent
   * with their new hash. Cost: one XXH3-128 per dirty page (~0.3 µs in kernel memory).
   */
  filter(mem: Uint8Array, dirty: Uint32Array): FakeDirtyResult {
    this.#check(mem, dirty);
    const n = dirty.length;
    const hashes = hashPageList(this.kernel, mem, dirty, new BigUint64Array(2 * n), { bits: 128, seed: this.seed });
    const skip = new Uint8Array(n);
    const skipped = this.filterHashed(dirty, hashes, skip);
    const m = n - skipped;
    const send = new Uint32Array(m);
    const sendHashes = new BigUint64Array(2 * m);
    for (let i = 0, j = 0; i < n; i++) {
      if (skip[i]) continue;
      send[j] = dirty[i];
      sendHashes[2 * j] = hashes[2 * i];
      sendHashes[2 * j + 1] = hashes[2 * i + 1];
      j++;
    }
    return { send, hashes: sendHashes, skipped };
  }

  /**
   * The decision alone, for callers that hashed the pages themselves: skip[i] = 1 when
   * pages[i]'s XXH3-128 (hashes[2i], hashes[2i+1], this filter's seed) equals what was
   * last sent; every other page is recorded as sent with its new hash. Returns the number skipped.
   */
  filterHashed(pages: Uint32Array, hashes: BigUint64Array, skip: Uint8Array): number {
    const n = pages.length;
    this.#checkPages(pages);
    if (hashes.length < 2 * n || skip.length < n)
      throw new PagewireRangeError(
        "BUFFER_TOO_SHORT",
        `FakeDirtyFilter.filterHashed: ${n} pages need ${2 * n} hash words and ${n} skip bytes`,
      );
    if (n === 0) return 0;
    const k = this.kernel;
    const { hashes: table, known } = this.layout();
    const h = hashes.subarray(0, 2 * n);
    const s = skip.subarray(0, n);
    const skipped = k.withPointers([pages, h, s], [s], ([p, hp, sp]) =>
      k.raw.filterUnchangedPages(table, known, p, hp, n, sp),
    );
    this.skippedUnchanged += skipped;
    this.passed += n - skipped;
    return skipped;
  }

  /** Records pages sent by another path (e.g. the first full pass) with their current content. */
  recordSent(mem: Uint8Array, pages: Uint32Array): void {
    this.#check(mem, pages);
    const hashes = hashPageList(this.kernel, mem, pages, new BigUint64Array(2 * pages.length), {
      bits: 128,
      seed: this.seed,
    });
    const h32 = new Uint32Array(hashes.buffer);
    const { hashes: table, known } = this.layout();
    const last = new Uint32Array(this.kernel.memory.buffer, table, this.pageCount * 4);
    const isKnown = new Uint8Array(this.kernel.memory.buffer, known, this.pageCount);
    for (let i = 0; i < pages.length; i++) {
      last.set(h32.subarray(i * 4, i * 4 + 4), pages[i] * 4);
      isKnown[pages[i]] = 1;
    }
  }

  /** Forgets what was sent for these pages (the next dirty report sends them). */
  forget(pages: Uint32Array): void {
    const known = new Uint8Array(this.kernel.memory.buffer, this.layout().known, this.pageCount);
    for (let i = 0; i < pages.length; i++) if (pages[i] < this.pageCount) known[pages[i]] = 0;
  }

  dispose(): void {
    this.kernel.free(this.#table);
  }

  #check(mem: Uint8Array, pages: Uint32Array): void {
    if (mem.byteLength < this.pageCount * PAGE_SIZE)
      throw new PagewireRangeError(
        "BUFFER_TOO_SHORT",
        `FakeDirtyFilter: memory has ${mem.byteLength} bytes, the guest ${this.pageCount * PAGE_SIZE}`,
      );
    this.#checkPages(pages);
  }

  #checkPages(pages: Uint32Array): void {
    for (let i = 0; i < pages.length; i++) {
      if (pages[i] >= this.pageCount)
        throw new PagewireRangeError("PAGE_INDEX", `FakeDirtyFilter: page ${pages[i]} is outside 0..${this.pageCount}`);
    }
  }
}
