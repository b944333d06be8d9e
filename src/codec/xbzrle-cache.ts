// The XBZRLE page cache (QEMU page_cache semantics) over one kernel region; layout and
// rules at the top of assembly/xbzrle-cache.ts. Counters are named as QEMU's query-migrate
// reports them under `xbzrle-cache`.
//
// see: migration/page_cache.c, migration/ram.c (save_xbzrle_page, xbzrle_cache_resize,
//      migration_update_rates)
import { PagewireRangeError } from "../errors.js";
import {
  CACHED_PAGE_LIFETIME,
  PAGE_SIZE,
  XBZRLE_STATS_BYTES,
  XBZRLE_STATS_MISSES,
  XBZRLE_STATS_OVERFLOWS,
  XBZRLE_STATS_PAGES,
  XBZRLE_STATS_SIZE,
} from "../kernel/abi.js";
import type { KernelRegion } from "../kernel/heap.js";
import type { Kernel } from "../kernel/kernel.js";

/** QEMU's default xbzrle-cache-size. */
export const DEFAULT_XBZRLE_CACHE_BYTES = 64 * 1024 * 1024;

export interface XbzrleCacheOptions {
  /** Cache size in bytes, rounded down to a power-of-two number of 4 KiB pages. Default 64 MiB. */
  bytes?: number;
}

/** The `xbzrle-cache` figures of QEMU's query-migrate, same names. */
export interface XbzrleCacheStats {
  "cache-size": number;
  /** Bytes sent for XBZRLE pages (encoding + 3 header bytes each) and overflowed pages (4096 each). */
  bytes: number;
  /** Pages that hit the cache (encoded, unchanged or overflowed). */
  pages: number;
  "cache-miss": number;
  /** Misses in the last period / pages sent in it (set by updateRates). */
  "cache-miss-rate": number;
  /** Unencoded bytes / encoded bytes of the pages that hit in the last period (set by updateRates). */
  "encoding-rate": number;
  overflow: number;
}

/** Where the cache lives in kernel memory, for kernels that use it (assembly/xbzrle-cache.ts layout). */
export interface XbzrleCacheLayout {
  tags: number;
  ages: number;
  data: number;
  slots: number;
}

/**
 * A direct-mapped cache of previously sent pages, sized in bytes (power-of-two slots),
 * indexed by guest page number, aged by the dirty-sync count. Lives in kernel memory:
 * `bytes` plus 8 bytes per slot. Views returned by `lookup` are valid until the next
 * kernel allocation.
 */
export class XbzrleCache {
  readonly k: Kernel;
  #region!: KernelRegion;
  readonly #counters: KernelRegion;
  #slots = 0;
  #dataOffset = 0;
  #stats = { pages: 0, bytes: 0, miss: 0, overflow: 0, missRate: 0, encodingRate: 0 };
  #prev = { pages: 0, bytes: 0, miss: 0 };

  constructor(k: Kernel, options: XbzrleCacheOptions = {}) {
    this.k = k;
    this.#allocate(options.bytes ?? DEFAULT_XBZRLE_CACHE_BYTES);
    this.#counters = k.alloc(XBZRLE_STATS_SIZE, 16);
  }

  /** Kernel addresses of the tags, ages and page data, and the slot count (valid until `resize`). */
  layout(): XbzrleCacheLayout {
    const tags = this.#region.ptr;
    return { tags, ages: tags + this.#slots * 4, data: tags + this.#dataOffset, slots: this.#slots };
  }

  /** Adds save counters a kernel counted (XBZRLE_STATS_*) to this cache's. */
  addSaveCounts(pages: number, bytes: number, misses: number, overflows: number): void {
    const s = this.#stats;
    s.pages += pages;
    s.bytes += bytes;
    s.miss += misses;
    s.overflow += overflows;
  }

  /** Number of slots (pages the cache holds): a power of two. */
  get slots(): number {
    return this.#slots;
  }

  /** Cache size in bytes (slots × 4096). */
  get size(): number {
    return this.#slots * PAGE_SIZE;
  }

  #allocate(bytes: number): void {
    if (!Number.isFinite(bytes) || bytes < PAGE_SIZE) {
      throw new PagewireRangeError(
        "XBZRLE_CACHE_SIZE",
        `xbzrle cache size ${bytes} bytes is smaller than one ${PAGE_SIZE}-byte page`,
      );
    }
    const pages = Math.floor(bytes / PAGE_SIZE);
    const slots = 2 ** Math.floor(Math.log2(pages)); // round down to a power of two, as QEMU
    const dataOffset = Math.ceil((slots * 8) / 64) * 64 + 64;
    // + one scratch page at the end for the kernel's copy of the page being encoded, so a
    // save never allocates (an allocation may grow memory and detach the caller's views)
    const region = this.k.alloc(dataOffset + (slots + 1) * PAGE_SIZE, 64);
    new Uint8Array(this.k.memory.buffer, region.ptr, slots * 8).fill(0);
    this.#region = region;
    this.#slots = slots;
    this.#dataOffset = dataOffset;
  }

  #tags(): Uint32Array {
    return new Uint32Array(this.k.memory.buffer, this.#region.ptr, this.#slots);
  }

  #ages(): Uint32Array {
    return new Uint32Array(this.k.memory.buffer, this.#region.ptr + this.#slots * 4, this.#slots);
  }

  #slotPtr(slot: number): number {
    return this.#region.ptr + this.#dataOffset + slot * PAGE_SIZE;
  }

  #checkPage(what: string, page: number): void {
    if (!Number.isInteger(page) || page < 0 || page >= 0xffffffff)
      throw new PagewireRangeError("PAGE_INDEX", `${what}: page index ${page} is outside 0..${0xffffffff - 1}`);
  }

  /**
   * The cached copy of `page` (a view of kernel memory), or null. With `syncCount`, a hit
   * refreshes the entry's age as QEMU's cache_is_cached does.
   */
  lookup(page: number, syncCount?: number): Uint8Array | null {
    this.#checkPage("XbzrleCache.lookup", page);
    const slot = page & (this.#slots - 1);
    if (this.#tags()[slot] !== page + 1) return null;
    if (syncCount !== undefined) this.#ages()[slot] = syncCount >>> 0;
    return new Uint8Array(this.k.memory.buffer, this.#slotPtr(slot), PAGE_SIZE);
  }

  /**
   * Caches `bytes` (4 KiB) as `page` at sync count `syncCount`. Returns false (and caches
   * nothing) when the slot holds another page whose age + 2 > syncCount (QEMU cache_insert).
   */
  insert(page: number, bytes: Uint8Array, syncCount: number): boolean {
    this.#checkPage("XbzrleCache.insert", page);
    if (bytes.byteLength < PAGE_SIZE)
      throw new PagewireRangeError(
        "BUFFER_TOO_SHORT",
        `XbzrleCache.insert: need ${PAGE_SIZE} bytes, got ${bytes.byteLength}`,
      );
    const slot = page & (this.#slots - 1);
    const tags = this.#tags();
    const ages = this.#ages();
    if (tags[slot] !== 0 && tags[slot] !== page + 1 && ages[slot] + CACHED_PAGE_LIFETIME > syncCount) return false;
    new Uint8Array(this.k.memory.buffer, this.#slotPtr(slot), PAGE_SIZE).set(bytes.subarray(0, PAGE_SIZE));
    tags[slot] = page + 1;
    ages[slot] = syncCount >>> 0;
    return true;
  }

  /**
   * Replaces the cache by an empty one of `bytes` (rounded down to power-of-two pages), as
   * QEMU's xbzrle_cache_resize does; counters are kept. Same size: nothing happens.
   */
  resize(bytes: number): void {
    const old = this.#region;
    if (bytes >= PAGE_SIZE && 2 ** Math.floor(Math.log2(Math.floor(bytes / PAGE_SIZE))) === this.#slots) return;
    this.#allocate(bytes);
    this.k.free(old);
  }

  /**
   * QEMU's save_xbzrle_page for a batch, in one kernel call. `ram` is guest memory (page i
   * at byte i × 4096; pass a view of kernel memory, or it is copied in and out), `pages` the
   * page indices to send, `syncCount` the current dirty-sync count. Per page, `lengths[i]`
   * gets n > 0 (an XBZRLE encoding of n bytes, packed back to back in `out`, which needs
   * pages.length × 4096 bytes), 0 (unchanged: send nothing), -1 (overflow: send raw),
   * SAVE_MISS_INSERTED / SAVE_MISS_NOT_INSERTED (cache miss: send raw). Raw pages should
   * be sent from `lookup(page)` when cached (the bytes the cache holds), else from RAM.
   * With `packed`, `ram` is a batch instead: the new content of pages[i] at i × 4096.
   * Updates the counters; returns the total encoded bytes.
   */
  savePages(
    ram: Uint8Array,
    pages: Uint32Array,
    syncCount: number,
    out: Uint8Array,
    lengths: Int32Array,
    options: { lastStage?: boolean; packed?: boolean } = {},
  ): number {
    const count = pages.length;
    let max = -1;
    for (let i = 0; i < count; i++) if (pages[i] > max) max = pages[i];
    if (options.packed && count * PAGE_SIZE > ram.byteLength)
      throw new PagewireRangeError(
        "BUFFER_TOO_SHORT",
        `XbzrleCache.savePages: ${count} packed pages need ${count * PAGE_SIZE} bytes, got ${ram.byteLength}`,
      );
    if (!options.packed && (max + 1) * PAGE_SIZE > ram.byteLength)
      throw new PagewireRangeError(
        "PAGE_INDEX",
        `XbzrleCache.savePages: page ${max} is past the end of ram (${Math.floor(ram.byteLength / PAGE_SIZE)} pages)`,
      );
    if (max >= 0xffffffff) throw new PagewireRangeError("PAGE_INDEX", `XbzrleCache.savePages: page ${max} too large`);
    if (out.byteLength < count * PAGE_SIZE)
      throw new PagewireRangeError(
        "BUFFER_TOO_SHORT",
        `XbzrleCache.savePages out: need ${count * PAGE_SIZE} bytes, got ${out.byteLength}`,
      );
    if (lengths.length < count)
      throw new PagewireRangeError(
        "BUFFER_TOO_SHORT",
        `XbzrleCache.savePages lengths: need ${count} entries, got ${lengths.length}`,
      );
    const scratch = this.#region.ptr + this.#dataOffset + this.#slots * PAGE_SIZE;
    const { tags, ages, data } = this.layout();
    const total = this.k.withPointers([ram, pages, out, lengths], [out, lengths], ([r, p, o, l]) =>
      this.k.raw.xbzrleCacheSavePages(
        tags,
        ages,
        data,
        this.#slots,
        r,
        p,
        count,
        syncCount >>> 0,
        options.lastStage ? 1 : 0,
        scratch,
        o,
        l,
        options.packed ? 1 : 0,
        this.#counters.ptr,
      ),
    );
    const c = new Uint32Array(this.k.memory.buffer, this.#counters.ptr, XBZRLE_STATS_SIZE >> 2);
    const at = (offset: number) => c[offset >> 2];
    this.addSaveCounts(
      at(XBZRLE_STATS_PAGES),
      at(XBZRLE_STATS_BYTES),
      at(XBZRLE_STATS_MISSES),
      at(XBZRLE_STATS_OVERFLOWS),
    );
    return total;
  }

  /**
   * Ends a rate period as QEMU's migration_update_rates does: cache-miss-rate = misses in
   * the period / `pagesInPeriod` (pages sent in it), encoding-rate = unencoded / encoded
   * bytes of the period's cache hits (0 when none).
   */
  updateRates(pagesInPeriod: number): void {
    const s = this.#stats,
      p = this.#prev;
    s.missRate = pagesInPeriod > 0 ? (s.miss - p.miss) / pagesInPeriod : 0;
    const encoded = s.bytes - p.bytes;
    s.encodingRate = s.pages === p.pages || encoded === 0 ? 0 : ((s.pages - p.pages) * PAGE_SIZE) / encoded;
    this.#prev = { pages: s.pages, bytes: s.bytes, miss: s.miss };
  }

  /** The counters, named as QEMU's query-migrate `xbzrle-cache`. */
  stats(): XbzrleCacheStats {
    const s = this.#stats;
    return {
      "cache-size": this.size,
      bytes: s.bytes,
      pages: s.pages,
      "cache-miss": s.miss,
      "cache-miss-rate": s.missRate,
      "encoding-rate": s.encodingRate,
      overflow: s.overflow,
    };
  }

  /** Returns the cache's kernel memory. The cache cannot be used afterwards. */
  dispose(): void {
    this.k.free(this.#region);
    this.k.free(this.#counters);
    this.#slots = 0;
  }
}
