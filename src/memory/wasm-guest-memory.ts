import { PagewireRangeError } from "../errors.js";
import { DirtyBitmap } from "../kernel/dirty-bitmap.js";
import type { KernelRegion } from "../kernel/heap.js";
import { PAGE_SIZE, type Kernel } from "../kernel/kernel.js";
import type { DirtyLog, GuestMemory } from "./guest-memory.js";

/** What a guest Worker needs to write pages and mark them dirty in a shared WasmGuestMemory. */
export interface GuestWorkerHandle {
  /** The kernel's shared memory buffer. */
  buffer: SharedArrayBuffer;
  /** Byte offset of page 0 in `buffer`. */
  ramOffset: number;
  pageCount: number;
  /** Byte offset of the dirty bitmap's u32 words in `buffer`. */
  dirtyOffset: number;
  dirtyWords: number;
}

/**
 * Guest RAM inside kernel memory (zero copy for the kernels) with a software dirty log:
 * every guest write sets the page's bit with Atomics.or, as KVM's dirty log would. With
 * `shared`, a guest in a Worker writes through `workerHandle()` while the migration runs.
 */
export class WasmGuestMemory implements GuestMemory {
  readonly kernel: Kernel;
  readonly pageCount: number;
  readonly region: KernelRegion;
  /** Pages written since the last harvest. */
  readonly dirty: DirtyBitmap;
  #pageIndex: KernelRegion | null = null;
  readonly #ownsRam: boolean;

  /**
   * `ram`: the byte offset of RAM that already lives in this kernel's memory (a channel
   * Worker's kernel over the main thread's shared memory); it is not freed by dispose().
   */
  constructor(kernel: Kernel, pageCount: number, options: { shared?: boolean; ram?: number } = {}) {
    if (!Number.isInteger(pageCount) || pageCount <= 0)
      throw new PagewireRangeError(
        "PAGE_COUNT",
        `WasmGuestMemory: page count must be a positive integer, got ${pageCount}`,
      );
    this.kernel = kernel;
    this.pageCount = pageCount;
    this.#ownsRam = options.ram === undefined;
    this.region =
      options.ram === undefined
        ? kernel.alloc(pageCount * PAGE_SIZE, PAGE_SIZE, true)
        : { ptr: options.ram, bytes: pageCount * PAGE_SIZE };
    this.dirty = new DirtyBitmap(kernel, pageCount, { shared: options.shared ?? false });
  }

  /** The whole guest RAM (re-create after allocations). */
  bytes(): Uint8Array {
    return this.kernel.bytes(this.region);
  }

  pageView(page: number): Uint8Array {
    this.#check(page);
    return new Uint8Array(this.kernel.memory.buffer, this.region.ptr + page * PAGE_SIZE, PAGE_SIZE);
  }

  readPages(pages: ArrayLike<number>, out: Uint8Array): void {
    const k = this.kernel;
    const n = pages.length;
    if (out.length < n * PAGE_SIZE)
      throw new PagewireRangeError(
        "BUFFER_TOO_SHORT",
        `readPages: ${n} pages need ${n * PAGE_SIZE} bytes, got ${out.length}`,
      );
    if (!this.#pageIndex || this.#pageIndex.bytes < n * 4) {
      if (this.#pageIndex) k.free(this.#pageIndex);
      this.#pageIndex = k.alloc(Math.max(n, 256) * 4);
    }
    const idx = k.u32(this.#pageIndex);
    for (let i = 0; i < n; i++) idx[i] = pages[i];
    const rc = k.withPointers([out], [out], ([po]) =>
      k.raw.gatherPages(this.region.ptr, this.pageCount, this.#pageIndex!.ptr, n, po),
    );
    if (rc < 0) throw new PagewireRangeError("PAGE_INDEX", `readPages: a page index is outside 0..${this.pageCount}`);
  }

  writePage(page: number, data: Uint8Array): void {
    this.pageView(page).set(data.subarray(0, PAGE_SIZE));
  }

  /** A guest write: copies `data` at byte `offset` and marks the touched pages dirty. */
  write(offset: number, data: Uint8Array): void {
    if (offset < 0 || offset + data.length > this.pageCount * PAGE_SIZE) {
      throw new PagewireRangeError(
        "GUEST_ADDRESS",
        `guest write of ${data.length} bytes at ${offset} is outside ${this.pageCount * PAGE_SIZE} bytes`,
      );
    }
    this.bytes().set(data, offset);
    if (data.length > 0) {
      const first = Math.floor(offset / PAGE_SIZE);
      const last = Math.floor((offset + data.length - 1) / PAGE_SIZE);
      if (first === last) this.dirty.set(first);
      else this.dirty.setRange(first, last - first + 1);
    }
  }

  async flush(): Promise<void> {}

  /** The software dirty log over this memory. */
  dirtyLog(): DirtyLog {
    return {
      start: () => this.dirty.clearAll(),
      harvest: (into) => void this.dirty.harvest(into),
      peek: (into) => void into.copyFrom(this.dirty),
      stop: () => {},
    };
  }

  /** Buffer and offsets for a guest Worker (needs a shared kernel and `{ shared: true }`). */
  workerHandle(): GuestWorkerHandle {
    const buffer = this.kernel.memory.buffer;
    if (!(buffer instanceof SharedArrayBuffer) || !this.dirty.shared) {
      throw new PagewireRangeError(
        "SHARED_UNAVAILABLE",
        "workerHandle: create the memory with { shared: true } on a shared kernel",
      );
    }
    return {
      buffer,
      ramOffset: this.region.ptr,
      pageCount: this.pageCount,
      dirtyOffset: this.dirty.region.ptr,
      dirtyWords: this.dirty.words * 2,
    };
  }

  dispose(): void {
    this.dirty.dispose();
    if (this.#pageIndex) this.kernel.free(this.#pageIndex);
    if (this.#ownsRam) this.kernel.free(this.region);
  }

  #check(page: number): void {
    if (!(page >= 0 && page < this.pageCount && Number.isInteger(page)))
      throw new PagewireRangeError("PAGE_INDEX", `page ${page} is outside 0..${this.pageCount}`);
  }
}
