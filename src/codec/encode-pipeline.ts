// The source's per-page encode pipeline (DESIGN.md, Codecs): for each page of a batch the
// first stage that applies wins, in the order of the codec table (codecs.ts):
//
//   unchanged since last sent (fake dirty) → zero → dedup → XBZRLE (cache) → RLE → LZ → raw
//
// (unchanged runs before zero so a zero page already sent as zero is skipped, not resent;
// XBZRLE, RLE and LZ all run on what is left and the shortest wins, the earlier on a tie;
// LZ only within its budget, lzMaxBytes, so a page that barely shrinks goes raw.) The
// whole batch is one kernel call (assembly/encode-pipeline.ts): each page is read once,
// straight into its RAW record slot in the frame buffer, and every stage works on that
// copy; a shorter record is written over the slot. The copy is the snapshot, as QEMU
// copies a page before encoding it: a guest writing meanwhile cannot make an encoding
// disagree with itself or with the XBZRLE cache. Pages come from guest RAM in kernel
// memory by index (encodeMemory), or from a packed snapshot the engine filled (encode).
//
// Records come out in batch order (zero records inline). Order matters for dedup: a
// reference names a page by what the destination holds when it applies the record, so
// the dedup index learns each page's content in exactly that order.
//
// Whatever path a page takes, the XBZRLE cache never keeps a copy that differs from the
// destination's page: zero and dedup pages overwrite a cached copy, and at the last stage
// (where QEMU does not refresh the cache) a page that hit the cache and changed loses
// its entry. With sendAll (post-copy: the destination waits for every page it was told
// is pending) no page is skipped and no dedup reference is sent.
import { PagewireRangeError } from "../errors.js";
import {
  ENCODE_CACHE_AGES,
  ENCODE_CACHE_DATA,
  ENCODE_CACHE_SLOTS,
  ENCODE_CACHE_TAGS,
  ENCODE_CONTEXT_BYTES,
  ENCODE_DEDUP_BASE,
  ENCODE_DEDUP_GUEST,
  ENCODE_DEDUP_MASK,
  ENCODE_DEDUP_REVERSE,
  ENCODE_DEDUP_TABLE,
  ENCODE_DEDUPS,
  ENCODE_FILTER_HASHES,
  ENCODE_FILTER_KNOWN,
  ENCODE_FLAG_LAST_STAGE,
  ENCODE_FLAG_RLE,
  ENCODE_FLAG_SEND_ALL,
  ENCODE_FLAG_XBZRLE,
  ENCODE_FLAG_ZERO,
  ENCODE_FLAGS,
  ENCODE_FLAG_LZ,
  ENCODE_GENERATION,
  ENCODE_LZ_MAX,
  ENCODE_LZS,
  ENCODE_PAGE_COUNT,
  ENCODE_RAWS,
  ENCODE_RLE_MAX,
  ENCODE_RLE_NEED,
  ENCODE_RLES,
  ENCODE_SCRATCH,
  ENCODE_SCRATCH_BYTES,
  ENCODE_SEED_HI,
  ENCODE_SEED_LO,
  ENCODE_SKIPPED,
  ENCODE_XBZRLE_STATS,
  ENCODE_XBZRLES,
  ENCODE_ZEROS,
  RECORD_HEADER_BYTES,
  XBZRLE_STATS_BYTES,
  XBZRLE_STATS_MISSES,
  XBZRLE_STATS_OVERFLOWS,
  XBZRLE_STATS_PAGES,
} from "../kernel/abi.js";
import type { KernelRegion } from "../kernel/heap.js";
import { PAGE_SIZE, type Kernel } from "../kernel/kernel.js";
import { randomSeed, splitSeed } from "../kernel/pagehash.js";
import type { DirtyLog, GuestMemory } from "../memory/guest-memory.js";
import { WasmGuestMemory } from "../memory/wasm-guest-memory.js";
import type { PageRecordWriter } from "../wire/page-record.js";
import { selectAllCodecs, type CodecFlags, type EncodeCounts } from "./codecs.js";
import { DedupIndex } from "./dedup-index.js";
import { FakeDirtyFilter } from "./fake-dirty.js";
import { XbzrleCache } from "./xbzrle-cache.js";

export { emptyCounts, type EncodeCounts } from "./codecs.js";

/** Which stages run (a flag per switchable codec, codecs.ts; undefined is on) and their settings. */
export interface CodecOptions extends CodecFlags {
  /** XBZRLE cache size in bytes (QEMU's default is 64 MiB). */
  xbzrleCacheBytes?: number;
  /** First dirty-sync round that uses XBZRLE (QEMU: after the bulk stage, 1). */
  xbzrleFromRound?: number;
  /** RLE is used only when the encoding is at most this many bytes (default 2048). */
  rleMaxBytes?: number;
  /** LZ is used only when the encoding is at most this many bytes (default 3968: 1/32 of a page saved at least). */
  lzMaxBytes?: number;
  /** A dedup index shared by several guests migrating to one destination (gang migration). */
  dedupIndex?: DedupIndex;
  /** Bytes of this pipeline's own dedup index (default 16 MiB). */
  dedupIndexBytes?: number;
  /** This guest's id in the shared dedup index (default 0). */
  guestId?: number;
  /** XXH3 seed for the unchanged/dedup hashes; default random per migration. The simulator fixes it so a run repeats bit for bit. */
  hashSeed?: bigint;
}

export const DEFAULT_CODECS = {
  ...selectAllCodecs(),
  xbzrleCacheBytes: 64 << 20,
  xbzrleFromRound: 1,
  rleMaxBytes: 2048,
  lzMaxBytes: 3968,
};

/** Worst case of one page's record: a RAW record (the slot every page is first copied into). */
const RECORD_MAX = RECORD_HEADER_BYTES + PAGE_SIZE;
/** u32 word of a context field. */
const W = (offset: number) => offset >>> 2;

/**
 * Encodes batches of pages into page records. One instance per migration: it owns the
 * per-migration state of the stages (XBZRLE cache, last-sent hashes, dedup index).
 */
export class EncodePipeline {
  readonly kernel: Kernel;
  readonly codecs: typeof DEFAULT_CODECS;
  readonly batchPages: number;
  readonly guestId: number;
  readonly seed: bigint;
  readonly pageCount: number;
  readonly #snapshot: KernelRegion;
  /** The kernel's context, then the batch's page list (u32 each). */
  readonly #context: KernelRegion;
  readonly #scratch: KernelRegion; // the XBZRLE, RLE and LZ encodings of the page at hand, the LZ table
  #staging: KernelRegion | null = null; // records for a writer outside this kernel's memory
  #words: Uint32Array;
  readonly #filter: FakeDirtyFilter | null;
  readonly #cache: XbzrleCache | null;
  readonly #dedup: DedupIndex | null;
  readonly #ownsDedup: boolean;
  #pagesInRound = 0;
  #cacheUsed = false;

  constructor(kernel: Kernel, pageCount: number, codecs: CodecOptions = {}, batchPages = 256) {
    if (!Number.isInteger(batchPages) || batchPages < 1 || batchPages > 0xffff)
      throw new PagewireRangeError("PAGE_COUNT", `EncodePipeline: batch of ${batchPages} pages (1..65535 allowed)`);
    this.kernel = kernel;
    this.pageCount = pageCount;
    const { dedupIndex, guestId, hashSeed, ...flags } = codecs;
    this.codecs = { ...DEFAULT_CODECS, ...flags };
    this.batchPages = batchPages;
    this.guestId = guestId ?? 0;
    this.seed = hashSeed ?? randomSeed(); // one per migration: hash decisions cannot be steered from outside
    // one spare page in front keeps the snapshot off power-of-two distances from guest RAM
    this.#snapshot = kernel.alloc((batchPages + 1) * PAGE_SIZE, PAGE_SIZE);
    const lzMax = this.codecs.lzMaxBytes;
    if (!Number.isInteger(lzMax) || lzMax < 1 || lzMax > PAGE_SIZE)
      throw new PagewireRangeError("LZ_MAX_BYTES", `EncodePipeline: lzMaxBytes ${lzMax} (1..${PAGE_SIZE} allowed)`);
    this.#scratch = kernel.alloc(ENCODE_SCRATCH_BYTES, 64);
    this.#context = kernel.alloc(ENCODE_CONTEXT_BYTES + 4 * batchPages, 64, true);
    this.#filter = this.codecs.unchanged ? new FakeDirtyFilter(kernel, pageCount, { seed: this.seed }) : null;
    this.#cache = this.codecs.xbzrle ? new XbzrleCache(kernel, { bytes: this.codecs.xbzrleCacheBytes }) : null;
    this.#ownsDedup = this.codecs.dedup && !dedupIndex;
    this.#dedup = this.codecs.dedup
      ? (dedupIndex ?? new DedupIndex(kernel, { maxBytes: codecs.dedupIndexBytes ?? 16 << 20 }))
      : null;
    if (this.#ownsDedup) this.#dedup!.addGuest(this.guestId, pageCount);
    this.#words = kernel.u32(this.#context);

    // the context fields that hold for the whole migration
    const c = this.#words;
    const [lo, hi] = splitSeed(this.seed);
    c[W(ENCODE_SEED_LO)] = lo;
    c[W(ENCODE_SEED_HI)] = hi;
    c[W(ENCODE_PAGE_COUNT)] = pageCount;
    c[W(ENCODE_SCRATCH)] = this.#scratch.ptr;
    c[W(ENCODE_RLE_MAX)] = this.codecs.rleMaxBytes;
    c[W(ENCODE_LZ_MAX)] = lzMax;
    // the kernel's RLE pre-filter: pages with fewer uniform 8-byte words are not worth encoding
    const minWords = Math.max(1, Math.ceil((PAGE_SIZE - this.codecs.rleMaxBytes) / 8 / 2));
    c[W(ENCODE_RLE_NEED)] = (minWords + 3) >>> 2;
    if (this.#filter) {
      const f = this.#filter.layout();
      c[W(ENCODE_FILTER_HASHES)] = f.hashes;
      c[W(ENCODE_FILTER_KNOWN)] = f.known;
    }
    if (this.#dedup) {
      const d = this.#dedup.layout(this.guestId);
      if (d.pageCount < pageCount)
        throw new PagewireRangeError(
          "PAGE_COUNT",
          `EncodePipeline: guest ${this.guestId} has ${d.pageCount} pages in the dedup index, ${pageCount} to send`,
        );
      c[W(ENCODE_DEDUP_TABLE)] = d.table;
      c[W(ENCODE_DEDUP_MASK)] = d.bucketMask;
      c[W(ENCODE_DEDUP_GUEST)] = this.guestId;
      c[W(ENCODE_DEDUP_BASE)] = d.base;
    }
    if (this.#cache) {
      const x = this.#cache.layout();
      c[W(ENCODE_CACHE_TAGS)] = x.tags;
      c[W(ENCODE_CACHE_AGES)] = x.ages;
      c[W(ENCODE_CACHE_DATA)] = x.data;
      c[W(ENCODE_CACHE_SLOTS)] = x.slots;
    }
    this.beginRound(0);
  }

  /** The batch buffer the engine reads page snapshots into (re-create after allocations). */
  snapshotView(count: number): Uint8Array {
    return new Uint8Array(this.kernel.memory.buffer, this.#snapshot.ptr + PAGE_SIZE, count * PAGE_SIZE);
  }

  /**
   * Starts dirty-sync period `round` (the XBZRLE cache ages entries by it). `lastStage`
   * is the stop-and-copy or post-copy phase: nothing more is inserted into the cache.
   * `sendAll`: every page gets a record, none is skipped as unchanged (post-copy: the
   * destination waits for each page it was told is pending).
   */
  beginRound(round: number, lastStage = false, sendAll = false): void {
    this.#closePeriod();
    const c = this.#context32();
    const xbzrle = this.#cache !== null && round >= this.codecs.xbzrleFromRound;
    c[W(ENCODE_FLAGS)] =
      (this.codecs.zero ? ENCODE_FLAG_ZERO : 0) |
      (this.codecs.rle ? ENCODE_FLAG_RLE : 0) |
      (this.codecs.lz ? ENCODE_FLAG_LZ : 0) |
      (xbzrle ? ENCODE_FLAG_XBZRLE : 0) |
      (sendAll ? ENCODE_FLAG_SEND_ALL : 0) |
      (lastStage ? ENCODE_FLAG_LAST_STAGE : 0);
    c[W(ENCODE_GENERATION)] = round >>> 0;
  }

  /**
   * Encodes `count` pages whose snapshots are in `snapshotView(count)`, appending records
   * to `out` (pages skipped as unchanged get none) and adding to `counts`. One kernel call.
   */
  encode(pages: Uint32Array, count: number, out: PageRecordWriter, counts: EncodeCounts): void {
    this.#encode(0, this.#snapshot.ptr + PAGE_SIZE, pages, count, out, counts);
  }

  /**
   * Like `encode`, reading the pages from `memory` itself: guest RAM in this kernel's
   * memory is read once, by the kernel, straight into the records (no snapshot copy);
   * other memories are read into the snapshot first. A content-based dirty log (`log` with
   * `observe`) is shown the pages as sent, from the snapshot.
   */
  encodeMemory(
    memory: GuestMemory,
    pages: Uint32Array,
    count: number,
    out: PageRecordWriter,
    counts: EncodeCounts,
    log?: DirtyLog,
  ): void {
    if (
      memory instanceof WasmGuestMemory &&
      memory.kernel === this.kernel &&
      memory.pageCount === this.pageCount &&
      !log?.observe
    ) {
      this.#encode(memory.region.ptr, 0, pages, count, out, counts);
      return;
    }
    const list = pages.length === count ? pages : pages.subarray(0, count);
    memory.readPages(list, this.snapshotView(count));
    log?.observe?.(list, this.snapshotView(count));
    this.encode(pages, count, out, counts);
  }

  #encode(
    ram: number,
    snapshot: number,
    pages: Uint32Array,
    count: number,
    out: PageRecordWriter,
    counts: EncodeCounts,
  ) {
    if (!Number.isInteger(count) || count < 0 || count > this.batchPages || count > pages.length)
      throw new PagewireRangeError(
        "PAGE_COUNT",
        `EncodePipeline: ${count} pages in a batch of at most ${this.batchPages} (${pages.length} listed)`,
      );
    if (count === 0) return;
    const k = this.kernel;
    // room for every page as RAW, in place when the writer lives in this kernel's memory
    let at = out.reserveInKernel(k, count * RECORD_MAX);
    const staged = at < 0;
    if (staged) at = (this.#staging ??= k.alloc(this.batchPages * RECORD_MAX, 64)).ptr;
    const c = this.#context32(); // after the reservation: it may have grown memory
    const list = W(ENCODE_CONTEXT_BYTES);
    c.set(pages.length === count ? pages : pages.subarray(0, count), list);
    if (this.#dedup) c[W(ENCODE_DEDUP_REVERSE)] = this.#dedup.reverseAddress; // moves when a guest is added
    const bytes = k.raw.encodePageBatch(this.#context.ptr, ram, this.#context.ptr + 4 * list, count, snapshot, at);
    if (bytes < 0)
      throw new PagewireRangeError("PAGE_INDEX", `EncodePipeline: a page index is outside 0..${this.pageCount}`);
    const zero = c[W(ENCODE_ZEROS)];
    const dedup = c[W(ENCODE_DEDUPS)];
    const xbzrle = c[W(ENCODE_XBZRLES)];
    const rle = c[W(ENCODE_RLES)];
    const lz = c[W(ENCODE_LZS)];
    const raw = c[W(ENCODE_RAWS)];
    const records = zero + dedup + xbzrle + rle + lz + raw;
    if (staged) out.addRecords(new Uint8Array(k.memory.buffer, at, bytes), records);
    else out.commit(bytes, records);
    counts.skipped += c[W(ENCODE_SKIPPED)];
    counts.zero += zero;
    counts.dedup += dedup;
    counts.xbzrle += xbzrle;
    counts.rle += rle;
    counts.lz += lz;
    counts.raw += raw;
    this.#pagesInRound += count;
    if (this.#cache && c[W(ENCODE_FLAGS)] & ENCODE_FLAG_XBZRLE) {
      const s = W(ENCODE_XBZRLE_STATS);
      const pages = c[s + W(XBZRLE_STATS_PAGES)];
      const misses = c[s + W(XBZRLE_STATS_MISSES)];
      if (pages + misses > 0) this.#cacheUsed = true;
      this.#cache.addSaveCounts(pages, c[s + W(XBZRLE_STATS_BYTES)], misses, c[s + W(XBZRLE_STATS_OVERFLOWS)]);
    }
  }

  /** The context's u32 words (a view re-created only when memory grew). */
  #context32(): Uint32Array {
    if (this.#words.buffer !== this.kernel.memory.buffer) this.#words = this.kernel.u32(this.#context);
    return this.#words;
  }

  /**
   * Counters of the stateful stages, with QEMU's names where one exists. The XBZRLE
   * rates (cache-miss-rate, encoding-rate) are those of the last period that used the
   * cache, as QEMU reports the latest period.
   */
  stats(): Record<string, number> {
    const s: Record<string, number> = {};
    if (this.#cache) Object.assign(s, this.#cache.stats());
    return s;
  }

  /** Dedup index counters (hits, misses, evictions, bytesSaved …), or null when dedup is off. */
  dedupStats(): Record<string, number> | null {
    return this.#dedup ? { ...this.#dedup.stats() } : null;
  }

  dispose(): void {
    this.kernel.free(this.#snapshot);
    this.kernel.free(this.#scratch);
    this.kernel.free(this.#context);
    if (this.#staging) this.kernel.free(this.#staging);
    this.#filter?.dispose();
    this.#cache?.dispose();
    if (this.#ownsDedup) this.#dedup!.dispose();
  }

  /** Ends the current period for the XBZRLE rates, unless the cache saw nothing in it. */
  #closePeriod(): void {
    if (this.#cache && this.#pagesInRound > 0 && this.#cacheUsed) this.#cache.updateRates(this.#pagesInRound);
    this.#pagesInRound = 0;
    this.#cacheUsed = false;
  }

  /** Ends the last period (call once the migration has sent its last page). */
  finish(): void {
    this.#closePeriod();
  }
}
