import { KernelMemoryError, PagewireRangeError } from "../errors.js";
import { HASH_SCRATCH_BYTES, PAGE_SIZE } from "./abi.js";
import type { DirtyBitmap } from "./dirty-bitmap.js";
import type { KernelExports } from "./exports.js";
import { KernelHeap, type KernelRegion } from "./heap.js";
import type { KernelBuild } from "./wasm-source.js";
import {
  hashBytes128,
  hashBytes64,
  hashPages as hashPagesInto,
  type Hash128,
  type HashPagesOptions,
} from "./pagehash.js";

/** Bytes in a guest page (defined in ./abi.ts; exported here too, as the public API has it). */
export { PAGE_SIZE };

/**
 * A region of one kernel's memory handed to another kernel instance (`kernel.arena()`,
 * then `createKernel({ arena })`, typically in a Worker). Structured-cloneable: post it to
 * a Worker (worker_threads or web) when `memory` is shared.
 */
export interface KernelArena extends KernelRegion {
  /** The owning kernel's memory, which the attached instance imports (no copy). */
  readonly memory: WebAssembly.Memory;
  /** The owning kernel's build: the attached instance must be the same module. */
  readonly build: KernelBuild;
  /** The owning kernel's compiled module (saves a compile; absent: compiled from `build`). */
  readonly module?: WebAssembly.Module;
}

/** How a Kernel was made beyond its instance (the loader fills this in). */
export interface KernelOptions {
  /** The compiled module of `instance`, passed on to arenas. */
  module?: WebAssembly.Module;
  /** The kernel allocates only inside this region of `memory` (an arena), and never grows it. */
  arena?: KernelRegion;
}

/**
 * One instance of the pagewire WASM module with its linear memory and heap.
 *
 * Views returned by `bytes()`/`u32()` are created on each call, over the current
 * `memory.buffer`: a later `alloc` may grow memory and detach earlier views, so never
 * keep one across a call that allocates. A kernel attached to an arena shares its memory
 * with the owning kernel, whose thread may grow it at any time: there, make views per call
 * and keep none across calls (a view of the old, shorter buffer still reads the same bytes
 * but is no longer recognised as kernel memory, so it would be copied).
 *
 * Several instances may share one memory (one owner, any number attached to arenas of
 * it), each used by one thread: every instance keeps its hashing scratch in a region of
 * its own (the owner: the area after the static data; an attached one: HASH_SCRATCH_BYTES
 * from its arena), and wasm globals are per instance.
 */
export class Kernel {
  readonly memory: WebAssembly.Memory;
  /** True when `memory` is a shared memory (its buffer a SharedArrayBuffer). */
  readonly shared: boolean;
  /** Which compilation of the module this is (`debug`: kernel assertions trap). */
  readonly build: KernelBuild;
  /** The raw numeric exports; wrappers below are the supported API. */
  readonly raw: KernelExports;
  /** The region of another kernel's memory this kernel allocates in (undefined: it owns `memory`). */
  readonly arenaRegion: KernelRegion | undefined;
  readonly #heap: KernelHeap;
  readonly #module: WebAssembly.Module | undefined;
  /** Arenas handed out and not yet freed, by ptr. */
  readonly #arenas = new Set<number>();

  constructor(
    instance: WebAssembly.Instance,
    memory: WebAssembly.Memory,
    shared: boolean,
    build: KernelBuild = "release",
    options: KernelOptions = {},
  ) {
    this.raw = instance.exports as unknown as KernelExports;
    this.memory = memory;
    this.shared = shared;
    this.build = build;
    this.#module = options.module;
    const arena = options.arena;
    this.arenaRegion = arena && { ptr: arena.ptr, bytes: arena.bytes };
    if (!arena) {
      this.#heap = new KernelHeap(memory, this.raw.heapBase() >>> 0);
    } else {
      this.#heap = new KernelHeap(memory, arena.ptr, { end: arena.ptr + arena.bytes });
      // before any hash: the default scratch (after the static data) is the owner's
      this.raw.setScratch(this.#heap.alloc(HASH_SCRATCH_BYTES, 64).ptr);
    }
  }

  // ---- regions ---------------------------------------------------------------------------

  /**
   * Allocates `bytes` of kernel memory aligned to `align` (a power of two). Contents are
   * unspecified unless `zero` is set (cheap for fresh memory: only reused bytes are cleared).
   */
  alloc(bytes: number, align = 16, zero = false): KernelRegion {
    return this.#heap.alloc(bytes, align, zero);
  }

  /** Returns a region to the heap. Freeing twice throws `REGION_NOT_LIVE`. */
  free(region: KernelRegion): void {
    this.#heap.free(region);
    this.#arenas.delete(region.ptr);
  }

  /**
   * Allocates an arena: `bytes` of this kernel's memory (zeroed, 64-byte aligned) for another
   * instance of the same module to attach to with `createKernel({ arena })`, usually in a
   * Worker (post the descriptor; the memory must be shared). The attached kernel allocates
   * only inside the arena (HASH_SCRATCH_BYTES of it become its hashing scratch) and works in
   * place on the rest of this memory, e.g. guest RAM this kernel allocated. Free it with
   * `freeArena` once the attached kernel is no longer used.
   */
  arena(bytes: number): KernelArena {
    const r = this.alloc(bytes, 64, true);
    this.#arenas.add(r.ptr);
    return { memory: this.memory, ptr: r.ptr, bytes: r.bytes, build: this.build, module: this.#module };
  }

  /** Returns an arena to this kernel's heap: its attached kernel must no longer run. */
  freeArena(arena: KernelRegion): void {
    if (!this.#arenas.has(arena.ptr))
      throw new KernelMemoryError("REGION_NOT_LIVE", `freeArena: no live arena of this kernel at offset ${arena.ptr}`);
    this.free(arena);
  }

  /** Bytes currently allocated from the kernel heap. */
  get allocatedBytes(): number {
    return this.#heap.allocatedBytes;
  }

  /** A fresh Uint8Array over the region (valid until the next allocation that grows memory). */
  bytes(region: KernelRegion): Uint8Array {
    return new Uint8Array(this.memory.buffer, region.ptr, region.bytes);
  }

  /** A fresh Uint32Array over the region (its length is bytes / 4, rounded down). */
  u32(region: KernelRegion): Uint32Array {
    return new Uint32Array(this.memory.buffer, region.ptr, region.bytes >>> 2);
  }

  /** True when `view` is a view of this kernel's current memory (usable in place). */
  owns(view: ArrayBufferView): boolean {
    return view.buffer === this.memory.buffer;
  }

  /**
   * Runs `fn` with kernel pointers for `views`. Views of kernel memory are used in place;
   * any other typed array is copied into a temporary region (and copied back afterwards
   * when it is also listed in `outputs`). Cost: one copy each way for foreign arrays.
   */
  withPointers<T>(
    views: readonly ArrayBufferView[],
    outputs: readonly ArrayBufferView[],
    fn: (ptrs: number[]) => T,
  ): T {
    const ptrs = views.map((v) => (this.owns(v) ? v.byteOffset : -1));
    const staged: Array<[ArrayBufferView, KernelRegion]> = [];
    try {
      for (let i = 0; i < views.length; i++) {
        if (ptrs[i] !== -1) continue;
        const v = views[i];
        const r = this.alloc(v.byteLength, 64);
        staged.push([v, r]);
        ptrs[i] = r.ptr;
      }
      for (const [v, r] of staged) this.bytes(r).set(asBytes(v));
      return fn(ptrs);
    } finally {
      for (const [v, r] of staged) {
        if (outputs.includes(v)) asBytes(v).set(this.bytes(r));
        this.free(r);
      }
    }
  }

  // ---- page kernels ----------------------------------------------------------------------

  /** True when the 4 KiB page is all zero. ~0.1 µs for a zero page in kernel memory. */
  isZeroPage(page: Uint8Array): boolean {
    checkLength("isZeroPage", page, PAGE_SIZE);
    return this.withPointers([page], [], ([p]) => this.raw.isZeroPage(p) !== 0);
  }

  /**
   * Sets in `into` the bit of every page i < pageCount whose 4 KiB differ between `a` and
   * `b`; returns how many pages differ. Bits already set in `into` stay set. SIMD compare
   * with an early exit per page: costs about one read of each differing page's prefix and
   * a full read of both copies of each equal page.
   */
  diffPages(a: Uint8Array, b: Uint8Array, pageCount: number, into: DirtyBitmap): number {
    checkLength("diffPages a", a, pageCount * PAGE_SIZE);
    checkLength("diffPages b", b, pageCount * PAGE_SIZE);
    checkPages("diffPages", pageCount, into);
    return this.withPointers([a, b], [], ([pa, pb]) => this.raw.diffPages(pa, pb, pageCount, into.region.ptr) >>> 0);
  }

  /** Sets in `into` the bit of every all-zero page among `pageCount` pages of `mem`; returns how many. */
  zeroPages(mem: Uint8Array, pageCount: number, into: DirtyBitmap): number {
    checkLength("zeroPages", mem, pageCount * PAGE_SIZE);
    checkPages("zeroPages", pageCount, into);
    return this.withPointers([mem], [], ([pm]) => this.raw.zeroPages(pm, pageCount, into.region.ptr) >>> 0);
  }

  // ---- page hashing ----------------------------------------------------------------------

  /** XXH3-64 of one 4 KiB page (any length is accepted: the hash is of all of `page`). ~0.3 µs + a copy for foreign arrays. */
  hashPage(page: Uint8Array, seed = 0n): bigint {
    return hashBytes64(this, page, seed);
  }

  /** XXH3-128 of `data` as { low, high }. */
  hashPage128(data: Uint8Array, seed = 0n): Hash128 {
    return hashBytes128(this, data, seed);
  }

  /**
   * Hashes `count` consecutive 4 KiB pages into `out`: one u64 per page (bits 64) or two
   * (bits 128: low, high). Zero copy when both are kernel views; ~0.3 µs per page.
   */
  hashPages(pages: Uint8Array, count: number, out: BigUint64Array, options: HashPagesOptions = {}): BigUint64Array {
    return hashPagesInto(this, pages, count, out, options);
  }
}

function asBytes(v: ArrayBufferView): Uint8Array {
  return v instanceof Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

function checkLength(what: string, view: ArrayBufferView, atLeast: number): void {
  if (view.byteLength < atLeast) {
    throw new PagewireRangeError("BUFFER_TOO_SHORT", `${what}: need ${atLeast} bytes, got ${view.byteLength}`);
  }
}

function checkPages(what: string, pageCount: number, into: DirtyBitmap): void {
  if (!Number.isInteger(pageCount) || pageCount < 0 || pageCount > into.pageCount) {
    throw new PagewireRangeError(
      "PAGE_COUNT",
      `${what}: page count ${pageCount} is outside the bitmap's 0..${into.pageCount}`,
    );
  }
}
