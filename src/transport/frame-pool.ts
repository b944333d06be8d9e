// Reusable frame buffers. A fresh large ArrayBuffer costs a page fault per 4 KiB on
// first touch (~13 µs each here: ~3.4 s per GiB), so transports keep the buffers of
// large frames and hand them out again instead of allocating one per frame.
//
//   acquire(size) ──► in use (sent, queued, being filled) ──release──► free list ──► acquire
//                           └──(handed to a consumer for good: never released, GC'd)
//
// Capacities come in quarter-octave classes (64 KiB, 80, 96, 112, 128, 160 … KiB; a
// 1 MiB frame with its header and trailer takes a 1.25 MiB buffer), so frames of slightly
// different sizes share buffers; the pages of a buffer that are never written are never
// touched. Frames below `minBytes` are plain allocations (small buffers come from the
// allocator's free lists, no page faults). The free list holds at most `maxFreeBytes`;
// a buffer released beyond that is dropped for the garbage collector.

/** Counters of a FramePool (for tests and benchmarks). */
export interface FramePoolStats {
  /** Pooled-size buffers allocated fresh (the pool was empty for that size class). */
  allocations: number;
  /** acquire() calls served from the free list. */
  reuses: number;
  /** Buffers given back with release(). */
  releases: number;
  /** Released buffers not kept because the free list was full. */
  drops: number;
  /** Bytes in the free list now. */
  freeBytes: number;
  /** Acquired buffers below `minBytes` (plain allocations, not pooled). */
  small: number;
}

export interface FramePoolOptions {
  /** Bytes the free list may hold (default 32 MiB). */
  maxFreeBytes?: number;
  /** Frames smaller than this are not pooled (default 64 KiB). */
  minBytes?: number;
  /** Allocates a buffer of `bytes` (default `new Uint8Array(bytes)`; a hook for tests). */
  allocate?: (bytes: number) => Uint8Array;
}

/**
 * A bounded pool of frame buffers. `acquire` hands out a buffer that is the pool's until
 * `release`d: the pool never hands it out again before that. A buffer that is never
 * released (given away for good, or lost with a dead connection) is simply collected.
 * Cost: acquire and release are O(1) (one Map lookup, one array push/pop).
 */
export class FramePool {
  readonly maxFreeBytes: number;
  readonly minBytes: number;
  readonly #allocate: (bytes: number) => Uint8Array;
  /** Free buffers by capacity. */
  readonly #free = new Map<number, Uint8Array[]>();
  /** Buffers handed out and not released, by their ArrayBuffer (weak: a buffer never released is collected). */
  #out = new WeakMap<ArrayBufferLike, Uint8Array>();
  readonly #stats: FramePoolStats = { allocations: 0, reuses: 0, releases: 0, drops: 0, freeBytes: 0, small: 0 };

  constructor(options: FramePoolOptions = {}) {
    this.maxFreeBytes = options.maxFreeBytes ?? 32 << 20;
    this.minBytes = options.minBytes ?? 64 << 10;
    this.#allocate = options.allocate ?? ((bytes) => new Uint8Array(bytes));
  }

  /** A copy of the counters. */
  get stats(): FramePoolStats {
    return { ...this.#stats };
  }

  /** The capacity of the buffer that holds `size` bytes (quarter-octave classes from `minBytes`). */
  static capacity(size: number): number {
    const octave = 2 ** Math.floor(Math.log2(size));
    const step = Math.max(1, octave / 4);
    return Math.ceil(size / step) * step;
  }

  /**
   * A buffer of at least `size` bytes (its length is its capacity: take a prefix). Pooled
   * when `size >= minBytes`: then it is this pool's until `release`.
   */
  acquire(size: number): Uint8Array {
    if (size < this.minBytes) {
      this.#stats.small++;
      return this.#allocate(size);
    }
    const cap = FramePool.capacity(Math.max(size, this.minBytes));
    const list = this.#free.get(cap);
    let buf = list?.pop();
    if (buf) {
      this.#stats.reuses++;
      this.#stats.freeBytes -= cap;
    } else {
      this.#stats.allocations++;
      buf = this.#allocate(cap);
    }
    this.#out.set(buf.buffer, buf);
    return buf;
  }

  /** True when `view` is (a view of) a buffer this pool handed out and that is not released yet. */
  owns(view: ArrayBufferView): boolean {
    return this.#out.has(view.buffer);
  }

  /**
   * Gives a buffer back (any view of it). Buffers this pool did not hand out, or already
   * released, are ignored, so a buffer is never in the free list twice.
   */
  release(view: ArrayBufferView): void {
    const buf = this.#out.get(view.buffer);
    if (!buf) return;
    this.#out.delete(view.buffer);
    this.#stats.releases++;
    if (this.#stats.freeBytes + buf.length > this.maxFreeBytes) {
      this.#stats.drops++;
      return;
    }
    let list = this.#free.get(buf.length);
    if (!list) this.#free.set(buf.length, (list = []));
    list.push(buf);
    this.#stats.freeBytes += buf.length;
  }

  /** Empties the free list (buffers in use stay valid; their release is then ignored). */
  clear(): void {
    this.#free.clear();
    this.#out = new WeakMap();
    this.#stats.freeBytes = 0;
  }
}
