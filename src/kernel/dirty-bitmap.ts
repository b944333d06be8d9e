import { PagewireRangeError } from "../errors.js";
import type { KernelRegion } from "./heap.js";
import type { Kernel } from "./kernel.js";

export interface DirtyBitmapOptions {
  /**
   * The bitmap is written concurrently (a guest in a Worker calling `markPageDirty` on
   * `sharedWords()`): single-bit updates use Atomics and harvest uses an atomic
   * exchange per non-zero word. Needs a kernel loaded with shared memory.
   */
  shared?: boolean;
}

/** A run of consecutive dirty pages. */
export interface PageRange {
  first: number;
  count: number;
}

/**
 * One bit per guest page, stored in kernel memory (bit i = bit i & 31 of u32 word i >> 5),
 * padded to 64 bytes with zero padding bits. Whole-bitmap operations run in the WASM
 * kernel (assembly/dirty-bitmap.ts) over 64-byte SIMD chunks, skipping empty chunks.
 */
export class DirtyBitmap {
  readonly kernel: Kernel;
  readonly pageCount: number;
  readonly region: KernelRegion;
  /** Length in u64 words (a multiple of 8). */
  readonly words: number;
  readonly shared: boolean;
  #view: Uint32Array;

  constructor(kernel: Kernel, pageCount: number, options: DirtyBitmapOptions = {}) {
    if (!Number.isInteger(pageCount) || pageCount < 0 || pageCount > 0xffff_ffc0) {
      throw new PagewireRangeError(
        "PAGE_COUNT",
        `DirtyBitmap: page count must be an integer in 0..${0xffff_ffc0}, got ${pageCount}`,
      );
    }
    const shared = options.shared ?? false;
    if (shared && !kernel.shared) {
      throw new PagewireRangeError(
        "SHARED_UNAVAILABLE",
        "DirtyBitmap: { shared: true } needs a kernel loaded with shared memory (loadKernel({ shared: true }))",
      );
    }
    this.kernel = kernel;
    this.pageCount = pageCount;
    this.shared = shared;
    this.words = Math.ceil(pageCount / 512) * 8;
    this.region = kernel.alloc(this.words * 8, 64);
    this.#view = kernel.u32(this.region);
    this.#view.fill(0);
  }

  /** The bitmap as u32 words over kernel memory: for a Worker to `markPageDirty` on (shared kernels). */
  sharedWords(): Uint32Array {
    return this.#words();
  }

  /** Bytes of kernel memory the bitmap occupies. */
  get byteLength(): number {
    return this.words * 8;
  }

  // ---- single bits (JS; ~5 ns) ------------------------------------------------------------

  set(i: number): void {
    this.#check(i);
    const w = this.#words();
    if (this.shared) Atomics.or(w, i >>> 5, 1 << (i & 31));
    else w[i >>> 5] |= 1 << (i & 31);
  }

  clear(i: number): void {
    this.#check(i);
    const w = this.#words();
    if (this.shared) Atomics.and(w, i >>> 5, ~(1 << (i & 31)));
    else w[i >>> 5] &= ~(1 << (i & 31));
  }

  get(i: number): boolean {
    this.#check(i);
    return ((this.#words()[i >>> 5] >>> (i & 31)) & 1) === 1;
  }

  /** Sets `count` pages from `first` (kernel; whole words in the middle). */
  setRange(first: number, count: number): void {
    if (
      !Number.isInteger(first) ||
      !Number.isInteger(count) ||
      first < 0 ||
      count < 0 ||
      first + count > this.pageCount
    ) {
      throw new PagewireRangeError(
        "PAGE_INDEX",
        `DirtyBitmap.setRange: [${first}, ${first + count}) is outside 0..${this.pageCount}`,
      );
    }
    this.kernel.raw.bitmapSetRange(this.region.ptr, first, count);
  }

  /** Clears every bit. */
  clearAll(): void {
    this.#words().fill(0);
  }

  // ---- whole-bitmap queries (kernel) -----------------------------------------------------

  /** Number of dirty pages. Reads 2 MiB for a 64 GiB guest, skipping empty 64-byte chunks. */
  count(): number {
    return this.kernel.raw.bitmapCount(this.region.ptr, this.words) >>> 0;
  }

  /**
   * Ascending dirty page indices. With `out` long enough, fills and returns a prefix of
   * it in one pass (no allocation when `out` is a kernel view: ~0.8× memcpy of the bitmap
   * bytes when sparse, ~2.5 ns per index at 1 %); otherwise counts first and returns a
   * new array.
   */
  collect(out?: Uint32Array): Uint32Array {
    const k = this.kernel;
    if (out && out.length > 0) {
      const written = k.withPointers(
        [out],
        [out],
        ([p]) => k.raw.bitmapCollect(this.region.ptr, this.words, p, out.length) >>> 0,
      );
      if (written < out.length || out[written - 1] + 1 >= this.pageCount || this.nextSet(out[written - 1] + 1) === -1) {
        return out.subarray(0, written);
      }
    }
    const n = this.count();
    const r = k.alloc(n * 4, 64);
    try {
      k.raw.bitmapCollect(this.region.ptr, this.words, r.ptr, n);
      return k.u32(r).slice(0, n);
    } finally {
      k.free(r);
    }
  }

  /** The first dirty page ≥ `from`, or -1. */
  nextSet(from: number): number {
    if (!Number.isInteger(from) || from < 0)
      throw new PagewireRangeError(
        "PAGE_INDEX",
        `DirtyBitmap.nextSet: from must be a non-negative integer, got ${from}`,
      );
    if (from >= this.pageCount) return -1;
    return this.kernel.raw.bitmapNextSet(this.region.ptr, this.words, from);
  }

  /** Runs of consecutive dirty pages, ascending. */
  ranges(): PageRange[] {
    const pairs = this.rangePairs();
    const out: PageRange[] = new Array(pairs.length >>> 1);
    for (let i = 0; i < out.length; i++) out[i] = { first: pairs[2 * i], count: pairs[2 * i + 1] };
    return out;
  }

  /**
   * Runs as a flat Uint32Array of (first, count) pairs: the allocation-light form of
   * `ranges()`. With `out` long enough, fills and returns a prefix of it.
   */
  rangePairs(out?: Uint32Array): Uint32Array {
    const k = this.kernel;
    const n = k.raw.bitmapRangeCount(this.region.ptr, this.words) >>> 0;
    if (out && out.length >= 2 * n) {
      const target = out.subarray(0, 2 * n);
      k.withPointers([target], [target], ([p]) => k.raw.bitmapRanges(this.region.ptr, this.words, p, n));
      return target;
    }
    const r = k.alloc(n * 8, 64);
    try {
      k.raw.bitmapRanges(this.region.ptr, this.words, r.ptr, n);
      return k.u32(r).slice(0, n * 2);
    } finally {
      k.free(r);
    }
  }

  // ---- in-place set algebra (kernel, SIMD) ---------------------------------------------------

  or(other: DirtyBitmap): this {
    this.kernel.raw.bitmapOr(this.region.ptr, this.#peer(other, "or").region.ptr, this.words);
    return this;
  }

  and(other: DirtyBitmap): this {
    this.kernel.raw.bitmapAnd(this.region.ptr, this.#peer(other, "and").region.ptr, this.words);
    return this;
  }

  /** this &= ~other */
  andNot(other: DirtyBitmap): this {
    this.kernel.raw.bitmapAndNot(this.region.ptr, this.#peer(other, "andNot").region.ptr, this.words);
    return this;
  }

  xor(other: DirtyBitmap): this {
    this.kernel.raw.bitmapXor(this.region.ptr, this.#peer(other, "xor").region.ptr, this.words);
    return this;
  }

  copyFrom(other: DirtyBitmap): this {
    const src = this.#peer(other, "copyFrom");
    this.#words().set(src.#words());
    return this;
  }

  /**
   * Swap and clear (KVM's get-and-clear dirty log): moves every dirty bit into `into`
   * (a new bitmap when omitted, its previous content replaced) and clears it here.
   * On a shared bitmap, a concurrent `markPageDirty` lands in this harvest or the next:
   * no bit lost, none counted twice. Returns the bitmap holding the harvested pages.
   */
  harvest(into?: DirtyBitmap): DirtyBitmap {
    const dst = into ? this.#peer(into, "harvest") : new DirtyBitmap(this.kernel, this.pageCount);
    this.kernel.raw.bitmapHarvest(this.region.ptr, dst.region.ptr, this.words, this.shared ? 1 : 0);
    return dst;
  }

  /** Returns the bitmap's memory to the kernel heap; the bitmap is unusable afterwards. */
  dispose(): void {
    this.kernel.free(this.region);
  }

  // ---- internals ----------------------------------------------------------------------------

  /** The u32 view, re-created when memory growth replaced the buffer. */
  #words(): Uint32Array {
    if (this.#view.buffer !== this.kernel.memory.buffer) this.#view = this.kernel.u32(this.region);
    return this.#view;
  }

  #check(i: number): void {
    if (!(i >= 0 && i < this.pageCount && Number.isInteger(i))) {
      throw new PagewireRangeError("PAGE_INDEX", `DirtyBitmap: page ${i} is outside 0..${this.pageCount}`);
    }
  }

  #peer(other: DirtyBitmap, op: string): DirtyBitmap {
    if (other.kernel !== this.kernel || other.pageCount !== this.pageCount) {
      throw new PagewireRangeError(
        "BITMAP_MISMATCH",
        `DirtyBitmap.${op}: bitmaps must share a kernel and a page count (${this.pageCount} vs ${other.pageCount})`,
      );
    }
    return other;
  }
}

/**
 * Marks `page` dirty in a bitmap's shared words from any thread (a guest Worker):
 * one Atomics.or, the software equivalent of a dirty-log write fault.
 */
export function markPageDirty(words: Uint32Array, page: number): void {
  Atomics.or(words, page >>> 5, 1 << (page & 31));
}
