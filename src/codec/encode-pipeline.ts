// The source's per-page encode pipeline (DESIGN.md, Codecs): for each page of a batch the
// first stage that applies wins, in the order of the codec table (codecs.ts):
//
//   unchanged since last sent (fake dirty) → zero → dedup → XBZRLE (cache) → RLE → raw
//
// (unchanged runs before zero so a zero page already sent as zero is skipped, not resent;
// XBZRLE and RLE both run on what is left and the shorter wins, XBZRLE on a tie.) Each
// stage's encode and apply steps live together in stages/; this file runs the encode
// steps over a batch and emits the records.
//
// A batch is a packed snapshot of the pages in kernel memory (the engine copies them out
// of guest memory first, as QEMU copies a page before encoding it), so a guest writing
// meanwhile cannot make an encoding disagree with itself or with the XBZRLE cache.
//
// Record order matters for dedup: a reference names a page by what the destination holds
// when it applies the record. The dedup index is updated in exactly the order records
// are emitted: the batch's zero pages first, then every other page in batch order.
//
// Whatever path a page takes, the XBZRLE cache never keeps a copy that differs from the
// destination's page: zero, dedup and RLE pages overwrite a cached copy.
import { DirtyBitmap } from "../kernel/dirty-bitmap.js";
import type { KernelRegion } from "../kernel/heap.js";
import { PAGE_SIZE, type Kernel } from "../kernel/kernel.js";
import { hashPages, randomSeed } from "../kernel/pagehash.js";
import { type PageRecordWriter, RecordKind } from "../wire/page-record.js";
import { selectAllCodecs, type CodecFlags, type EncodeCounts } from "./codecs.js";
import { DedupIndex } from "./dedup-index.js";
import { FakeDirtyFilter } from "./fake-dirty.js";
import { findDuplicatePages, recordDedupPages } from "./stages/dedup.js";
import { encodeRleCandidates, type RleEncodings } from "./stages/rle.js";
import { markUnchangedPages, SKIP } from "./stages/unchanged.js";
import { encodeCachedDeltas, noCachedDeltas, overwriteCachedPage, type CachedDeltas } from "./stages/xbzrle.js";
import { emitZeroPages } from "./stages/zero.js";
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
  /** A dedup index shared by several guests migrating to one destination (gang migration). */
  dedupIndex?: DedupIndex;
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
};

/**
 * Encodes batches of page snapshots into page records. One instance per migration: it
 * owns the per-migration state of the stages (XBZRLE cache, last-sent hashes, dedup index).
 */
export class EncodePipeline {
  readonly kernel: Kernel;
  readonly codecs: typeof DEFAULT_CODECS;
  readonly batchPages: number;
  readonly guestId: number;
  readonly seed: bigint;
  readonly #zeroBits: DirtyBitmap;
  readonly #snapshot: KernelRegion;
  readonly #work: KernelRegion; // XBZRLE, then RLE output: batch × 4096 bytes
  readonly #rleFlags: KernelRegion; // one byte per batch page: worth trying RLE
  readonly #hashes: BigUint64Array;
  readonly #filter: FakeDirtyFilter | null;
  readonly #cache: XbzrleCache | null;
  readonly #dedup: DedupIndex | null;
  readonly #ownsDedup: boolean;
  #round = 0;
  #lastStage = false;
  #sendAll = false;
  #pagesInRound = 0;
  #cacheUsed = false;

  constructor(kernel: Kernel, pageCount: number, codecs: CodecOptions = {}, batchPages = 256) {
    this.kernel = kernel;
    const { dedupIndex, guestId, hashSeed, ...flags } = codecs;
    this.codecs = { ...DEFAULT_CODECS, ...flags };
    this.batchPages = batchPages;
    this.guestId = guestId ?? 0;
    this.seed = hashSeed ?? randomSeed(); // one per migration: hash decisions cannot be steered from outside
    this.#zeroBits = new DirtyBitmap(kernel, batchPages);
    // one spare page in front keeps the snapshot off power-of-two distances from guest RAM
    this.#snapshot = kernel.alloc((batchPages + 1) * PAGE_SIZE, PAGE_SIZE);
    this.#work = kernel.alloc(batchPages * PAGE_SIZE, 64);
    this.#rleFlags = kernel.alloc(batchPages, 64);
    this.#hashes = new BigUint64Array(2 * batchPages);
    this.#filter = this.codecs.unchanged ? new FakeDirtyFilter(kernel, pageCount, { seed: this.seed }) : null;
    this.#cache = this.codecs.xbzrle ? new XbzrleCache(kernel, { bytes: this.codecs.xbzrleCacheBytes }) : null;
    this.#ownsDedup = this.codecs.dedup && !dedupIndex;
    this.#dedup = this.codecs.dedup ? (dedupIndex ?? new DedupIndex(kernel)) : null;
    if (this.#ownsDedup) this.#dedup!.addGuest(this.guestId, pageCount);
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
    this.#round = round;
    this.#lastStage = lastStage;
    this.#sendAll = sendAll;
  }

  /**
   * Encodes `count` pages whose snapshots are in `snapshotView(count)`, appending records
   * to `out` (pages skipped as unchanged get none) and adding to `counts`.
   */
  encode(pages: Uint32Array, count: number, out: PageRecordWriter, counts: EncodeCounts): void {
    const k = this.kernel;
    const c = this.codecs;
    const snap = this.#snapshot.ptr + PAGE_SIZE;
    const list = pages.subarray(0, count);
    const kind = new Int8Array(count).fill(RecordKind.RAW);
    const hashes = this.#hashes.subarray(0, 2 * count);
    this.#pagesInRound += count;

    if (this.#filter || this.#dedup)
      hashPages(k, this.snapshotView(count), count, hashes, { bits: 128, seed: this.seed });

    // unchanged since last sent: nothing to send, nothing changes at the destination
    if (this.#filter && !this.#sendAll) counts.skipped += markUnchangedPages(this.#filter, list, hashes, kind);

    // zero pages: emitted first, and recorded first in the dedup index
    if (c.zero) {
      const zeros = emitZeroPages(k, this.#zeroBits, snap, list, kind, out);
      for (const i of zeros) overwriteCachedPage(this.#cache, list[i], null);
      counts.zero += zeros.length;
      if (this.#dedup && zeros.length) recordDedupPages(this.#dedup, this.guestId, list, hashes, zeros);
    }

    // the rest, in batch order: dedup lookups (which also record what each page will hold)
    const rest: number[] = [];
    for (let i = 0; i < count; i++) if (kind[i] === RecordKind.RAW) rest.push(i);
    // post-copy (sendAll): the destination guest may have written the page a reference would name
    const refs =
      this.#dedup && !this.#sendAll ? findDuplicatePages(this.#dedup, this.guestId, list, hashes, rest, kind) : null;

    // XBZRLE / RLE / raw for the pages dedup did not cover, compacted to the front of the snapshot
    const view = () => new Uint8Array(k.memory.buffer, snap, count * PAGE_SIZE);
    const left: number[] = [];
    for (const i of rest) {
      if (kind[i] === RecordKind.DEDUP)
        overwriteCachedPage(this.#cache, list[i], view().subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
      else left.push(i);
    }
    const m = left.length;
    const snapshot = view();
    left.forEach((i, j) => {
      if (i !== j) snapshot.copyWithin(j * PAGE_SIZE, i * PAGE_SIZE, (i + 1) * PAGE_SIZE);
    });
    const xbzrle = this.#encodeDeltas(
      snapshot.subarray(0, m * PAGE_SIZE),
      Uint32Array.from(left, (i) => list[i]),
    );
    const rle: RleEncodings | null =
      c.rle && m > 0 ? encodeRleCandidates(k, snap, m, this.#rleFlags, this.#work, c.rleMaxBytes) : null;

    // emit in batch order (zero records are out already)
    let j = 0;
    let r = 0;
    const packed = view();
    for (let i = 0; i < count; i++) {
      const page = list[i];
      if (kind[i] === SKIP || kind[i] === RecordKind.ZERO) continue;
      if (kind[i] === RecordKind.DEDUP) {
        out.addDedup(page, refs![2 * r], refs![2 * r + 1]);
        counts.dedup++;
        r++;
        continue;
      }
      r++;
      const body = packed.subarray(j * PAGE_SIZE, (j + 1) * PAGE_SIZE);
      const xl = xbzrle.lengths[j];
      const rl = rle ? rle.lengths[j] : -1;
      if (xl === 0 && !this.#sendAll) {
        counts.skipped++; // XBZRLE: identical to the cached (and destination) copy
      } else if (xl > 0 && (rl < 0 || xl <= rl)) {
        out.add(RecordKind.XBZRLE, page, xbzrle.bodies[j]);
        counts.xbzrle++;
      } else if (rl > 0 && rl <= c.rleMaxBytes) {
        out.add(RecordKind.RLE, page, rle!.bodies[j]);
        counts.rle++;
        if (xl > 0) overwriteCachedPage(this.#cache, page, body); // the cache encoded a delta we do not send
      } else {
        out.add(RecordKind.RAW, page, body);
        counts.raw++;
      }
      j++;
    }
  }

  /** XBZRLE deltas of the packed pages when the cache is in use this round, else none. */
  #encodeDeltas(packed: Uint8Array, pages: Uint32Array): CachedDeltas {
    if (!this.#cache || this.#round < this.codecs.xbzrleFromRound || pages.length === 0)
      return noCachedDeltas(pages.length);
    this.#cacheUsed = true;
    return encodeCachedDeltas(this.kernel, this.#cache, packed, pages, this.#round, this.#work, this.#lastStage);
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
    this.#zeroBits.dispose();
    this.kernel.free(this.#snapshot);
    this.kernel.free(this.#work);
    this.kernel.free(this.#rleFlags);
    this.#filter?.dispose?.();
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
