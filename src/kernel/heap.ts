import { KernelMemoryError } from "../errors.js";

/** A block of kernel linear memory: `ptr` is its byte offset, `bytes` its usable length. */
export interface KernelRegion {
  readonly ptr: number;
  readonly bytes: number;
}

const WASM_PAGE = 65536;
const MAX_BYTES = 65536 * WASM_PAGE; // 4 GiB: the wasm32 limit

export interface KernelHeapOptions {
  /**
   * Hand out nothing at or above this offset and never grow memory: the heap of a kernel
   * attached to an arena (a region another kernel's heap allocated, zeroed, in a shared
   * memory). An allocation that does not fit throws `ARENA_FULL`.
   */
  end?: number;
}

/**
 * First-fit allocator over kernel linear memory, kept in TypeScript because kernels
 * allocate nothing (design: kernel contract). Free blocks are kept sorted by address
 * and coalesced on free; memory grows (`memory.grow`) only when no block fits, and
 * never for a heap bounded by `end` (an arena).
 * Costs: alloc and free are O(number of free blocks), which stays small because the
 * engine holds a few large regions, not many small ones.
 */
export class KernelHeap {
  readonly #memory: WebAssembly.Memory;
  /** Free blocks [start, end) sorted by start, disjoint and non-adjacent. */
  readonly #free: Array<[number, number]> = [];
  /** Live allocations: ptr → [block start, block end] (start ≤ ptr because of alignment). */
  readonly #live = new Map<number, [number, number]>();
  #top: number;
  /**
   * Highest end ever handed out: memory above it is still as memory.grow left it (zero), or
   * for an arena as the owning kernel handed it over (zeroed).
   */
  #highWater: number;

  /** True when the heap is bounded by `end` (an arena): it never grows memory. */
  readonly bounded: boolean;
  /** First byte the heap may hand out. */
  readonly #base: number;
  /** Exclusive upper bound of the regions handed out: the arena's end, else MAX_BYTES. */
  readonly #end: number;

  constructor(memory: WebAssembly.Memory, heapBase: number, options: KernelHeapOptions = {}) {
    this.#memory = memory;
    this.#top = alignUp(Math.max(heapBase, 16), 64);
    this.#highWater = this.#top;
    this.#base = heapBase;
    this.#end = options.end ?? MAX_BYTES;
    this.bounded = options.end !== undefined;
  }

  /** Bytes currently handed out (including alignment padding). */
  get allocatedBytes(): number {
    let n = 0;
    for (const [s, e] of this.#live.values()) n += e - s;
    return n;
  }

  /**
   * A region of `bytes` aligned to `align`. With `zero`, its bytes are zero: only the part
   * below the high-water mark is cleared (fresh memory from memory.grow already is), so a
   * large zeroed allocation costs no pass over memory the heap never handed out.
   */
  alloc(bytes: number, align = 16, zero = false): KernelRegion {
    const r = this.#alloc(bytes, align);
    if (zero) {
      const dirtyEnd = Math.min(r.ptr + bytes, this.#highWaterBefore);
      if (dirtyEnd > r.ptr) new Uint8Array(this.#memory.buffer, r.ptr, dirtyEnd - r.ptr).fill(0);
    }
    return r;
  }

  #highWaterBefore = 0;

  #alloc(bytes: number, align: number): KernelRegion {
    this.#highWaterBefore = this.#highWater;
    if (!Number.isInteger(bytes) || bytes < 0)
      throw new KernelMemoryError("ALLOC_SIZE", `alloc: size must be a non-negative integer, got ${bytes}`);
    if (!Number.isInteger(align) || align < 1 || (align & (align - 1)) !== 0 || align > WASM_PAGE) {
      throw new KernelMemoryError("ALLOC_ALIGN", `alloc: alignment must be a power of two ≤ 65536, got ${align}`);
    }
    const size = Math.max(alignUp(bytes, 16), 16);
    // first fit among free blocks
    for (let i = 0; i < this.#free.length; i++) {
      const [s, e] = this.#free[i];
      const p = alignUp(s, align);
      if (p + size <= e) {
        this.#free.splice(i, 1);
        if (p + size < e) this.#free.splice(i, 0, [p + size, e]);
        if (s < p) this.#insertFree(s, p);
        this.#live.set(p, [p, p + size]);
        return { ptr: p, bytes };
      }
    }
    // bump from the top, growing memory as needed
    const p = alignUp(this.#top, align);
    const end = p + size;
    if (this.bounded && end > this.#end) {
      throw new KernelMemoryError(
        "ARENA_FULL",
        `alloc: ${bytes} bytes (aligned to ${align}) do not fit in the arena [${this.#base}, ${this.#end}) ` +
          `of ${this.#end - this.#base} bytes: ${this.allocatedBytes} allocated, ${Math.max(0, this.#end - this.#top)} ` +
          "free at the top (an arena never grows)",
      );
    }
    if (end > MAX_BYTES) {
      throw new KernelMemoryError(
        "OUT_OF_MEMORY",
        `alloc: ${bytes} bytes do not fit in the 4 GiB wasm32 address space (${this.#top} bytes in use or free below the top)`,
      );
    }
    this.#ensure(end);
    if (this.#top < p) this.#insertFree(this.#top, p);
    this.#top = end;
    this.#highWater = Math.max(this.#highWater, end);
    this.#live.set(p, [p, end]);
    return { ptr: p, bytes };
  }

  free(region: KernelRegion): void {
    const block = this.#live.get(region.ptr);
    if (!block)
      throw new KernelMemoryError(
        "REGION_NOT_LIVE",
        `free: no live region at offset ${region.ptr} (double free or foreign region)`,
      );
    this.#live.delete(region.ptr);
    this.#insertFree(block[0], block[1]);
    // give the topmost free block back to the bump pointer
    const last = this.#free[this.#free.length - 1];
    if (last && last[1] === this.#top) {
      this.#free.pop();
      this.#top = last[0];
    }
  }

  isLive(region: KernelRegion): boolean {
    return this.#live.has(region.ptr);
  }

  #ensure(end: number): void {
    const have = this.#memory.buffer.byteLength;
    if (end <= have) return;
    const pages = Math.ceil((end - have) / WASM_PAGE);
    try {
      this.#memory.grow(pages);
    } catch (cause) {
      throw new KernelMemoryError("OUT_OF_MEMORY", `alloc: cannot grow kernel memory from ${have} to ${end} bytes`, {
        cause,
      });
    }
  }

  #insertFree(s: number, e: number): void {
    const f = this.#free;
    let i = 0;
    while (i < f.length && f[i][0] < s) i++;
    f.splice(i, 0, [s, e]);
    // coalesce with the next, then with the previous block
    if (i + 1 < f.length && f[i][1] === f[i + 1][0]) {
      f[i][1] = f[i + 1][1];
      f.splice(i + 1, 1);
    }
    if (i > 0 && f[i - 1][1] === f[i][0]) {
      f[i - 1][1] = f[i][1];
      f.splice(i, 1);
    }
  }
}

export function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}
