// Dedup content index over the pages a destination holds (kernel: assembly/dedup-index.ts).
//
//   source, per page to send (after zero-page and fake-dirty checks):
//     h = XXH3-128(page, migration seed)
//     ref = index.lookupAndRecord(guest, [page], [h])   -> (guest', page') or none
//     ref ? send DEDUP(guest', page') : send the page
//   any other write of a destination page: index.record (content hash known) or
//   index.invalidate (content unknown), in stream order.
//
// Correctness rests on the destination applying records in the order the index saw
// them: a reference handed out for record n names a page that holds the content at the
// time record n is applied. The whole-memory digest at the end catches a 128-bit
// collision (probability ~2^-128 per pair with a per-migration random seed).
//
// Memory: `maxBytes` for the table (32 bytes per entry, 4-way buckets, rounded down to a
// power of two of buckets) + 4 bytes per registered guest page (the reverse map).
// Eviction: least recently used way of the bucket (lookups that hit refresh an entry).
import { PagewireError, PagewireRangeError } from "../errors.js";
import {
  DEDUP_BUCKET_BYTES,
  DEDUP_HEADER_BYTES,
  DEDUP_HEADER_DROPS,
  DEDUP_HEADER_EVICTIONS,
  DEDUP_HEADER_HITS,
  DEDUP_HEADER_INSERTS,
  DEDUP_HEADER_MISSES,
  DEDUP_NONE,
  DEDUP_WAYS,
  PAGE_SIZE,
} from "../kernel/abi.js";
import type { KernelRegion } from "../kernel/heap.js";
import type { Kernel } from "../kernel/kernel.js";

/** A dedup index misuse: unknown guest, guest registered twice. */
export class DedupError extends PagewireError {}

export interface DedupIndexOptions {
  /** Bytes of kernel memory for the table (entries × 32). Default 16 MiB (524288 entries). Minimum 128. */
  maxBytes?: number;
}

/** Counters of a DedupIndex (since creation or the last `reset`). */
export interface DedupStats {
  /** Lookups that returned a reference. */
  hits: number;
  /** Lookups that found nothing. */
  misses: number;
  /** Entries pushed out of a full bucket (the content is still at the destination, just forgotten). */
  evictions: number;
  /** Entries created. */
  inserts: number;
  /** Entries removed because their page was overwritten at the destination. */
  drops: number;
  /** hits × 4096: page payload bytes not sent. */
  bytesSaved: number;
  /** Table capacity in entries. */
  capacity: number;
}

/** A destination page that holds some content: the payload of a dedup reference. */
export interface PageRef {
  guest: number;
  page: number;
}

/** Where the index lives in kernel memory for one guest (assembly/dedup-index.ts layout). */
export interface DedupLayout {
  table: number;
  bucketMask: number;
  /** The reverse map (moves when a guest is added). */
  reverse: number;
  /** The guest's first global page, and its page count. */
  base: number;
  pageCount: number;
}

/**
 * 128-bit hash → (guest, page) held by the destination, shared by every guest migrated to
 * that destination. Batch calls run in the kernel: ~0.1 µs per page.
 */
export class DedupIndex {
  readonly kernel: Kernel;
  readonly bucketCount: number;
  readonly #table: KernelRegion;
  #reverse: KernelRegion;
  #reversePages = 0;
  readonly #guests = new Map<number, { base: number; pageCount: number }>();

  constructor(kernel: Kernel, options: DedupIndexOptions = {}) {
    const maxBytes = options.maxBytes ?? 16 << 20;
    if (!Number.isFinite(maxBytes) || maxBytes < DEDUP_BUCKET_BYTES)
      throw new PagewireRangeError(
        "DEDUP_SIZE",
        `DedupIndex: maxBytes must be ≥ ${DEDUP_BUCKET_BYTES}, got ${maxBytes}`,
      );
    let buckets = 1;
    while (buckets * 2 * DEDUP_BUCKET_BYTES <= maxBytes && buckets < 1 << 26) buckets *= 2;
    this.kernel = kernel;
    this.bucketCount = buckets;
    this.#table = kernel.alloc(DEDUP_HEADER_BYTES + buckets * DEDUP_BUCKET_BYTES, 64);
    this.#reverse = kernel.alloc(4, 16);
    kernel.raw.dedupReset(this.#table.ptr, buckets);
  }

  /** Entries the table can hold (4 per bucket). */
  get capacity(): number {
    return this.bucketCount * DEDUP_WAYS;
  }

  /** Kernel bytes used: table + reverse map (4 bytes per registered page). */
  get byteLength(): number {
    return this.#table.bytes + this.#reversePages * 4;
  }

  /**
   * Registers a guest whose pages the index may reference (ids are any u32, distinct).
   * Grows the reverse map by 4 bytes per page (a copy of the existing map).
   */
  addGuest(guest: number, pageCount: number): void {
    if (!Number.isInteger(guest) || guest < 0 || guest > 0xfffffffe)
      throw new PagewireRangeError("GUEST_ID", `DedupIndex: guest id must be a u32 below 2^32-1, got ${guest}`);
    if (this.#guests.has(guest))
      throw new DedupError("GUEST_EXISTS", `DedupIndex: guest ${guest} is already registered`);
    if (!Number.isInteger(pageCount) || pageCount < 0 || this.#reversePages + pageCount > 0xfffffff0) {
      throw new PagewireRangeError(
        "PAGE_COUNT",
        `DedupIndex.addGuest: page count ${pageCount} does not fit (already ${this.#reversePages} pages)`,
      );
    }
    const k = this.kernel;
    const base = this.#reversePages;
    const total = base + pageCount;
    const next = k.alloc(Math.max(4, total * 4), 16);
    const view = k.u32(next);
    view.set(new Uint32Array(k.memory.buffer, this.#reverse.ptr, base));
    view.fill(0, base, total);
    k.free(this.#reverse);
    this.#reverse = next;
    this.#reversePages = total;
    this.#guests.set(guest, { base, pageCount });
  }

  /**
   * For each i: looks up the content `hashes[2i], hashes[2i+1]` (XXH3-128 low, high) about
   * to be written to `pages[i]` of `guest`; returns per page a reference (out[2i] guest,
   * out[2i+1] page) or DEDUP_NONE in out[2i]; then records that the page now holds it.
   * A reference may name the page itself (its content is unchanged at the destination).
   */
  lookupAndRecord(guest: number, pages: Uint32Array, hashes: BigUint64Array, out?: Uint32Array): Uint32Array {
    const result = out ?? new Uint32Array(pages.length * 2);
    this.#apply("lookupAndRecord", guest, pages, hashes, result, 1);
    return result;
  }

  /** Kernel address of the reverse map (it moves when a guest is added). */
  get reverseAddress(): number {
    return this.#reverse.ptr;
  }

  /** Kernel addresses for a kernel that looks up and records pages of `guest` itself (valid until the next `addGuest`). */
  layout(guest: number): DedupLayout {
    const g = this.#guest("layout", guest, new Uint32Array(0));
    return {
      table: this.#table.ptr,
      bucketMask: this.bucketCount - 1,
      reverse: this.#reverse.ptr,
      base: g.base,
      pageCount: g.pageCount,
    };
  }

  /** One page: the reference to send instead of it, or null. */
  lookupPage(guest: number, page: number, low: bigint, high: bigint): PageRef | null {
    const r = this.lookupAndRecord(guest, Uint32Array.of(page), BigUint64Array.of(low, high));
    return r[0] === DEDUP_NONE ? null : { guest: r[0], page: r[1] };
  }

  /** The destination now holds these contents at these pages (sent raw, XBZRLE, …). */
  record(guest: number, pages: Uint32Array, hashes: BigUint64Array): void {
    this.#apply("record", guest, pages, hashes, null, 0);
  }

  /** These pages were overwritten at the destination with content the index does not know. */
  invalidate(guest: number, pages: Uint32Array): void {
    const g = this.#guest("invalidate", guest, pages);
    const k = this.kernel;
    k.withPointers([pages], [], ([p]) =>
      k.raw.dedupInvalidate(this.#table.ptr, this.#reverse.ptr, g.base, p, pages.length),
    );
  }

  /** Counters since creation (or the last `reset`). */
  stats(): DedupStats {
    const h = new BigUint64Array(this.kernel.memory.buffer, this.#table.ptr, DEDUP_HEADER_BYTES >> 3);
    const at = (offset: number): number => Number(h[offset >> 3]);
    const hits = at(DEDUP_HEADER_HITS);
    return {
      hits,
      misses: at(DEDUP_HEADER_MISSES),
      evictions: at(DEDUP_HEADER_EVICTIONS),
      inserts: at(DEDUP_HEADER_INSERTS),
      drops: at(DEDUP_HEADER_DROPS),
      bytesSaved: hits * PAGE_SIZE,
      capacity: this.capacity,
    };
  }

  /** Forgets every entry and zeroes the counters (guests stay registered). */
  reset(): void {
    this.kernel.raw.dedupReset(this.#table.ptr, this.bucketCount);
    this.kernel.u32(this.#reverse).fill(0);
  }

  dispose(): void {
    this.kernel.free(this.#table);
    this.kernel.free(this.#reverse);
  }

  #guest(what: string, guest: number, pages: Uint32Array): { base: number; pageCount: number } {
    const g = this.#guests.get(guest);
    if (!g) throw new DedupError("GUEST_UNKNOWN", `DedupIndex.${what}: guest ${guest} is not registered`);
    for (let i = 0; i < pages.length; i++) {
      if (pages[i] >= g.pageCount)
        throw new PagewireRangeError(
          "PAGE_INDEX",
          `DedupIndex.${what}: page ${pages[i]} of guest ${guest} is outside 0..${g.pageCount}`,
        );
    }
    return g;
  }

  #apply(
    what: string,
    guest: number,
    pages: Uint32Array,
    hashes: BigUint64Array,
    out: Uint32Array | null,
    lookup: number,
  ): void {
    const g = this.#guest(what, guest, pages);
    const n = pages.length;
    if (hashes.length < 2 * n)
      throw new PagewireRangeError(
        "BUFFER_TOO_SHORT",
        `DedupIndex.${what}: ${n} pages need ${2 * n} hash words, got ${hashes.length}`,
      );
    if (out && out.length < 2 * n)
      throw new PagewireRangeError(
        "BUFFER_TOO_SHORT",
        `DedupIndex.${what}: ${n} pages need ${2 * n} output words, got ${out.length}`,
      );
    if (n === 0) return;
    const k = this.kernel;
    const h = hashes.subarray(0, 2 * n);
    const views: ArrayBufferView[] = [pages, h];
    if (out) views.push(out.subarray(0, 2 * n));
    const outs = out ? [views[2]] : [];
    k.withPointers(views, outs, ([p, hp, o]) =>
      k.raw.dedupApply(
        this.#table.ptr,
        this.bucketCount - 1,
        this.#reverse.ptr,
        guest,
        g.base,
        p,
        hp,
        n,
        o ?? 0,
        lookup,
      ),
    );
  }
}
