// The source's per-page encode pipeline (DESIGN.md, Codecs): for each page of a batch the
// first stage that applies wins:
//
//   unchanged since last sent (fake dirty) → zero → dedup → XBZRLE (cache) → RLE → raw
//
// (unchanged runs before zero so a zero page already sent as zero is skipped, not resent.)
// A batch is a packed snapshot of the pages in kernel memory (the engine copies them out
// of guest memory first, as QEMU copies a page before encoding it), so a guest writing
// meanwhile cannot make an encoding disagree with itself or with the XBZRLE cache.
//
// Record order matters for dedup: a reference names a page by what the destination holds
// when it applies the record. The dedup index is updated in exactly the order records
// are emitted: the batch's zero pages first, then every other page in batch order.
//
// Whatever path a page takes, the XBZRLE cache never keeps a copy that differs from the
// destination's page: zero, dedup and RLE pages overwrite a cached copy (QEMU does this
// for zero pages: xbzrle_cache_zero_page).
import { DEDUP_NONE, SAVE_MISS_INSERTED } from "../kernel/abi.js";
import { DirtyBitmap } from "../kernel/dirty-bitmap.js";
import type { KernelRegion } from "../kernel/heap.js";
import { PAGE_SIZE, type Kernel } from "../kernel/kernel.js";
import { DedupIndex } from "./dedup-index.js";
import { FakeDirtyFilter } from "./fake-dirty.js";
import { PageRecordWriter, RecordKind } from "../wire/page-record.js";
import { hashPages, randomSeed } from "../kernel/pagehash.js";
import { XbzrleCache } from "./xbzrle-cache.js";

/** Which stages run; each can be switched off so benchmarks compare them. */
export interface CodecOptions {
  zero?: boolean;
  unchanged?: boolean;
  dedup?: boolean;
  xbzrle?: boolean;
  rle?: boolean;
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
  zero: true,
  unchanged: true,
  dedup: true,
  xbzrle: true,
  rle: true,
  xbzrleCacheBytes: 64 << 20,
  xbzrleFromRound: 1,
  rleMaxBytes: 2048,
};

/** Counts by outcome for one batch or round. */
export interface EncodeCounts {
  zero: number;
  raw: number;
  xbzrle: number;
  rle: number;
  dedup: number;
  skipped: number;
}

export function emptyCounts(): EncodeCounts {
  return { zero: 0, raw: 0, xbzrle: 0, rle: 0, dedup: 0, skipped: 0 };
}

const SKIP = -1;

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

    if (this.#filter || this.#dedup) hashPages(k, this.snapshotView(count), count, hashes, { bits: 128, seed: this.seed });

    // unchanged since last sent: nothing to send, nothing changes at the destination
    if (this.#filter && !this.#sendAll) {
      const skip = new Uint8Array(count);
      counts.skipped += this.#filter.filterHashed(list, hashes, skip);
      for (let i = 0; i < count; i++) if (skip[i]) kind[i] = SKIP;
    }

    // zero pages: emitted first, and recorded first in the dedup index
    if (c.zero) {
      this.#zeroBits.clearAll();
      k.raw.zeroPages(snap, count, this.#zeroBits.region.ptr);
      const zw = this.#zeroBits.sharedWords();
      const zeroList: number[] = [];
      for (let i = 0; i < count; i++) {
        if (kind[i] !== SKIP && (zw[i >>> 5] >>> (i & 31)) & 1) {
          kind[i] = RecordKind.ZERO;
          out.add(RecordKind.ZERO, list[i]);
          zeroList.push(i);
          this.#cacheOverwrite(list[i], null);
        }
      }
      counts.zero += zeroList.length;
      if (this.#dedup && zeroList.length) this.#dedup.record(this.guestId, Uint32Array.from(zeroList, (i) => list[i]), pick(hashes, zeroList));
    }

    // the rest, in batch order: dedup lookups (which also record what each page will hold)
    const rest: number[] = [];
    for (let i = 0; i < count; i++) if (kind[i] === RecordKind.RAW) rest.push(i);
    const refs = new Uint32Array(2 * rest.length);
    if (this.#dedup && rest.length) this.#dedup.lookupAndRecord(this.guestId, Uint32Array.from(rest, (i) => list[i]), pick(hashes, rest), refs);

    // XBZRLE / RLE / raw for the pages dedup did not cover, compacted to the front of the snapshot
    const view = () => new Uint8Array(k.memory.buffer, snap, count * PAGE_SIZE);
    const encodeList: number[] = [];
    rest.forEach((i, j) => {
      if (this.#dedup && refs[2 * j] !== DEDUP_NONE) {
        kind[i] = RecordKind.DEDUP;
        this.#cacheOverwrite(list[i], view().subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
      } else encodeList.push(i);
    });
    const m = encodeList.length;
    const snapshot = view();
    encodeList.forEach((i, j) => { if (i !== j) snapshot.copyWithin(j * PAGE_SIZE, i * PAGE_SIZE, (i + 1) * PAGE_SIZE); });
    const packed = snapshot.subarray(0, m * PAGE_SIZE);
    const xbLengths = new Int32Array(m).fill(SAVE_MISS_INSERTED);
    const xbOffsets = new Int32Array(m);
    const useXbzrle = this.#cache && this.#round >= c.xbzrleFromRound && m > 0;
    if (useXbzrle) {
      this.#cacheUsed = true;
      const outView = new Uint8Array(k.memory.buffer, this.#work.ptr, m * PAGE_SIZE);
      this.#cache!.savePages(packed, Uint32Array.from(encodeList, (i) => list[i]), this.#round, outView, xbLengths, { packed: true, lastStage: this.#lastStage });
      let o = 0;
      for (let j = 0; j < m; j++) { xbOffsets[j] = o; if (xbLengths[j] > 0) o += xbLengths[j]; }
    }
    // an XBZRLE result of 0 means the cached copy equals the page: nothing to send
    const xbData = () => new Uint8Array(k.memory.buffer, this.#work.ptr, m * PAGE_SIZE);
    const xbzrleBodies: Uint8Array[] = new Array(m);
    if (useXbzrle) {
      const d = xbData();
      for (let j = 0; j < m; j++) if (xbLengths[j] > 0) xbzrleBodies[j] = d.slice(xbOffsets[j], xbOffsets[j] + xbLengths[j]);
    }
    // RLE: only pages with enough uniform 8-byte words, each encoding capped at rleMaxBytes
    let rleLengths: Int32Array | null = null;
    let rleOut: Uint8Array | null = null;
    if (c.rle && m > 0) {
      rleLengths = new Int32Array(m).fill(-1);
      const flags = this.#rleFlags.ptr;
      const minWords = Math.max(1, Math.ceil((PAGE_SIZE - c.rleMaxBytes) / 8 / 2));
      if (k.raw.rleCandidates(snap, m, minWords, flags) > 0) {
        const f = new Uint8Array(k.memory.buffer, flags, m);
        let o = 0;
        for (let j = 0; j < m; j++) {
          if (!f[j]) continue;
          const n = k.raw.rleEncode(snap + j * PAGE_SIZE, this.#work.ptr + o, c.rleMaxBytes);
          rleLengths[j] = n;
          if (n > 0) o += n;
        }
        rleOut = new Uint8Array(k.memory.buffer, this.#work.ptr, o).slice();
      }
    }

    // emit in batch order
    let j = 0;
    let r = 0;
    let rleOffset = 0;
    const snapNow = view();
    for (let i = 0; i < count; i++) {
      const page = list[i];
      if (kind[i] === SKIP || kind[i] === RecordKind.ZERO) continue;
      if (kind[i] === RecordKind.DEDUP) {
        out.addDedup(page, refs[2 * r], refs[2 * r + 1]);
        counts.dedup++;
        r++;
        continue;
      }
      r++;
      const body = snapNow.subarray(j * PAGE_SIZE, (j + 1) * PAGE_SIZE);
      const xl = xbLengths[j];
      const rl = rleLengths ? rleLengths[j] : -1;
      if (rleLengths) rleOffset = rleOffsetOf(rleLengths, j, rleOffset);
      if (xl === 0 && !this.#sendAll) {
        counts.skipped++; // XBZRLE: identical to the cached (and destination) copy
      } else if (xl > 0 && (rl < 0 || xl <= rl)) {
        out.add(RecordKind.XBZRLE, page, xbzrleBodies[j]);
        counts.xbzrle++;
      } else if (rl > 0 && rl <= c.rleMaxBytes) {
        out.add(RecordKind.RLE, page, rleOut!.subarray(rleOffset, rleOffset + rl));
        counts.rle++;
        if (xl > 0) this.#cacheOverwrite(page, body); // the cache encoded a delta we do not send
      } else {
        out.add(RecordKind.RAW, page, body);
        counts.raw++;
      }
      j++;
    }
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

  /** Keeps a cached XBZRLE copy equal to what the destination now holds (zeros when `data` is null). */
  #cacheOverwrite(page: number, data: Uint8Array | null): void {
    if (!this.#cache) return;
    const cached = this.#cache.lookup(page);
    if (!cached) return;
    if (data) cached.set(data);
    else cached.fill(0);
  }
}

/** hashes of the listed batch positions, packed (low, high per page); copied as u32 words (no BigInt work). */
function pick(hashes: BigUint64Array, positions: number[]): BigUint64Array {
  const out = new BigUint64Array(2 * positions.length);
  const from = new Uint32Array(hashes.buffer, hashes.byteOffset, hashes.length * 2);
  const to = new Uint32Array(out.buffer);
  positions.forEach((i, j) => to.set(from.subarray(4 * i, 4 * i + 4), 4 * j));
  return out;
}

/** Offset of page j's RLE encoding in the packed output (encodings are back to back; -1 takes no space). */
function rleOffsetOf(lengths: Int32Array, j: number, previous: number): number {
  if (j === 0) return 0;
  return previous + Math.max(0, lengths[j - 1]);
}
