import { PagewireRangeError } from "../errors.js";
import {
  HISTORY_FIELD_COUNT,
  HISTORY_FIELD_DISTANCE,
  HISTORY_FIELD_SENT,
  HISTORY_HEADER_ACTIVE,
  HISTORY_HEADER_BYTES,
  HISTORY_HEADER_CAP,
  HISTORY_HEADER_COMPACTIONS,
  HISTORY_HEADER_COUNTS,
  HISTORY_HEADER_DISTS,
  HISTORY_HEADER_FEN,
  HISTORY_HEADER_HEAD,
  HISTORY_HEADER_LIVE,
  HISTORY_HEADER_MIN_ACTIVE,
  HISTORY_HEADER_NEXT,
  HISTORY_HEADER_OWNER,
  HISTORY_HEADER_PAGES,
  HISTORY_HEADER_RING,
  HISTORY_HEADER_ROUNDS,
  HISTORY_HEADER_SENT,
  HISTORY_HEADER_STAMPS,
  HISTORY_HEADER_WORDS,
  HISTORY_NO_DISTANCE,
  HISTORY_ROUNDS,
} from "../kernel/abi.js";
import { DirtyBitmap } from "../kernel/dirty-bitmap.js";
import type { KernelRegion } from "../kernel/heap.js";
import type { Kernel } from "../kernel/kernel.js";

export interface PageHistoryOptions {
  /**
   * Keep the reuse-distance tracker (default true). It costs 20 bytes per page on top of
   * the 4-byte history (stamp 4 B, distance 4 B, Fenwick tree 6 B, owner array 6 B); without it
   * `recordWrites` and `reuseDistance` throw `NO_REUSE_TRACKER`.
   */
  reuseDistance?: boolean;
  /**
   * Smallest span of stamps the reuse tracker's Fenwick tree works over (default 65536).
   * The span grows to 4× the distinct pages seen, so a small working set keeps the tree
   * small and in cache; a smaller value means more (cheaper) renumberings.
   */
  minStampSpan?: number;
}

export interface RecordRoundOptions {
  /**
   * Feed the round's pages to the reuse-distance tracker (default true when the tracker
   * exists). Pass false when the same writes were already fed, exactly, by `recordWrites`.
   */
  distances?: boolean;
}

/**
 * Per-page dirty history in kernel memory (assembly/page-history.ts):
 *
 * - the last 8 rounds' dirty bitmaps as a ring (1 bit per page per round = 1 B/page),
 * - a saturating dirty count (u8, max 255): the number of recorded rounds the page was
 *   dirty in,
 * - the round last sent (u16, stored as round + 1, 0 = never, saturating at round 65534),
 *
 * 4 bytes per page in all (64 MiB for a 64 GiB guest of 2^24 pages), plus, unless
 * disabled, the reuse-distance tracker: 20 bytes per page allocated (stamp and latest
 * distance, 8 B; a Fenwick tree and a stamp→page owner array over 1.5 stamps per page,
 * 12 B), 320 MiB for 2^24 pages. Only the part of the tree that spans 4× the distinct
 * pages seen is touched, so small working sets stay in cache.
 *
 * Reuse distance (see: Alamdari & Zamanifar 2012) is the number of distinct pages
 * dirtied between two consecutive dirtyings of a page: exact for a write trace given to
 * `recordWrites`; round-granular for `recordRound`, which stamps the pages of one round
 * in ascending index order (as if the round's writes happened in page order).
 *
 * Round numbering: `roundsAgo` 0 is the most recent `recordRound`, 1 the one before …
 * up to 7. The engine records each round's harvested dirty log before asking a
 * selection policy, so `dirtiedInRound(p, 0)` means "written since the previous harvest".
 */
export class PageHistory {
  readonly kernel: Kernel;
  readonly pageCount: number;
  /** u64 words per round bitmap (as DirtyBitmap.words). */
  readonly words: number;
  readonly tracksReuseDistance: boolean;
  readonly #regions: KernelRegion[] = [];
  readonly #header: KernelRegion;
  readonly #counts: KernelRegion;
  readonly #sent: KernelRegion;
  /** Stamp and latest distance per page, interleaved (8 bytes per page). */
  readonly #records: KernelRegion | null;
  readonly #ring: DirtyBitmap[];
  #scratch: KernelRegion | null = null;

  constructor(kernel: Kernel, pageCount: number, options: PageHistoryOptions = {}) {
    if (!Number.isInteger(pageCount) || pageCount < 0 || pageCount > 0xffff_ffc0) {
      throw new PagewireRangeError(
        "PAGE_COUNT",
        `PageHistory: page count must be an integer in 0..${0xffff_ffc0}, got ${pageCount}`,
      );
    }
    this.kernel = kernel;
    this.pageCount = pageCount;
    this.tracksReuseDistance = options.reuseDistance ?? true;
    this.#ring = Array.from({ length: HISTORY_ROUNDS }, () => new DirtyBitmap(kernel, pageCount));
    this.words = this.#ring[0].words;
    const alloc = (bytes: number, fill: number): KernelRegion => {
      const r = kernel.alloc(Math.max(bytes, 16), 64);
      this.#regions.push(r);
      kernel.bytes(r).fill(fill);
      return r;
    };
    this.#header = alloc(HISTORY_HEADER_BYTES, 0);
    this.#counts = alloc(pageCount, 0);
    this.#sent = alloc(pageCount * 2, 0);
    const ringTable = alloc(HISTORY_ROUNDS * 4, 0);
    let fen: KernelRegion | null = null,
      owner: KernelRegion | null = null,
      cap = 0;
    const minSpan = Math.max(1, Math.floor(options.minStampSpan ?? 65536));
    this.#records = null;
    if (this.tracksReuseDistance) {
      cap = pageCount + Math.max(pageCount >>> 1, 64);
      this.#records = alloc(pageCount * 8, 0xff);
      const rec = kernel.u32(this.#records);
      for (let i = 0; i < rec.length; i += 2) rec[i] = 0; // stamps 0, distances HISTORY_NO_DISTANCE
      fen = alloc((cap + 1) * 4, 0);
      owner = alloc((cap + 1) * 4, 0);
    }
    const table = kernel.u32(ringTable);
    this.#ring.forEach((b, i) => (table[i] = b.region.ptr));
    const h = kernel.u32(this.#header);
    h[HISTORY_HEADER_PAGES >> 2] = pageCount;
    h[HISTORY_HEADER_WORDS >> 2] = this.words;
    h[HISTORY_HEADER_COUNTS >> 2] = this.#counts.ptr;
    h[HISTORY_HEADER_SENT >> 2] = this.#sent.ptr;
    h[HISTORY_HEADER_STAMPS >> 2] = this.#records?.ptr ?? 0;
    h[HISTORY_HEADER_DISTS >> 2] = this.#records ? this.#records.ptr + 4 : 0;
    h[HISTORY_HEADER_FEN >> 2] = fen?.ptr ?? 0;
    h[HISTORY_HEADER_CAP >> 2] = cap;
    h[HISTORY_HEADER_NEXT >> 2] = 1;
    h[HISTORY_HEADER_LIVE >> 2] = 0;
    h[HISTORY_HEADER_RING >> 2] = ringTable.ptr;
    h[HISTORY_HEADER_HEAD >> 2] = 0;
    h[HISTORY_HEADER_ROUNDS >> 2] = 0;
    h[HISTORY_HEADER_OWNER >> 2] = owner?.ptr ?? 0;
    h[HISTORY_HEADER_ACTIVE >> 2] = Math.min(cap, minSpan);
    h[HISTORY_HEADER_MIN_ACTIVE >> 2] = Math.min(cap, minSpan);
  }

  /** Rounds recorded so far. */
  get rounds(): number {
    return this.#field(HISTORY_HEADER_ROUNDS);
  }

  /** Times the reuse tracker renumbered its stamps (each O(pageCount)). */
  get compactions(): number {
    return this.#field(HISTORY_HEADER_COMPACTIONS);
  }

  /** Kernel bytes used by the 4-byte-per-page history (ring, counts, last sent). */
  get historyBytes(): number {
    return HISTORY_ROUNDS * this.words * 8 + this.#counts.bytes + this.#sent.bytes;
  }

  /** Kernel bytes used in all, reuse-distance tracker included. */
  get byteLength(): number {
    return this.#ring.reduce((n, b) => n + b.byteLength, 0) + this.#regions.reduce((n, r) => n + r.bytes, 0);
  }

  // ---- recording ---------------------------------------------------------------------------

  /**
   * Records an ordered write trace in the reuse tracker: each entry is one write to that
   * page, and distances are exact. O(log distinct pages) per write, in the kernel. Does
   * not advance the round nor touch dirty counts: call `recordRound` at each harvest,
   * with `{ distances: false }` when the same writes were traced here.
   */
  recordWrites(pages: Uint32Array): void {
    this.#needTracker("recordWrites");
    const k = this.kernel;
    const rc = k.withPointers([pages], [], ([p]) => k.raw.historyRecordWrites(this.#header.ptr, p, pages.length));
    if (rc < 0) {
      let bad = -1;
      for (const x of pages)
        if (x >= this.pageCount) {
          bad = x;
          break;
        }
      throw new PagewireRangeError(
        "PAGE_INDEX",
        `PageHistory.recordWrites: page ${bad} is outside 0..${this.pageCount} (nothing recorded)`,
      );
    }
  }

  /**
   * Records one round's dirty set: it becomes round 0 (older rounds shift back, the
   * 8th is dropped), dirty counts of its pages go up by one, and (by default) its pages
   * are stamped in ascending index order in the reuse tracker. One pass over the bitmap
   * plus O(log pages) per dirty page. Returns the number of dirty pages.
   */
  recordRound(bitmap: DirtyBitmap, options: RecordRoundOptions = {}): number {
    this.#peer(bitmap, "recordRound");
    const distances = options.distances ?? this.tracksReuseDistance;
    if (distances) this.#needTracker("recordRound with distances");
    return this.kernel.raw.historyRecordRound(this.#header.ptr, bitmap.region.ptr, distances ? 1 : 0);
  }

  /** Records that the pages of `bitmap` were sent in `round` (≥ 0). Returns how many. */
  markSent(bitmap: DirtyBitmap, round: number): number {
    this.#peer(bitmap, "markSent");
    if (!Number.isInteger(round) || round < 0)
      throw new PagewireRangeError("ROUND", `PageHistory.markSent: round must be a non-negative integer, got ${round}`);
    return this.kernel.raw.historyMarkSent(this.#header.ptr, bitmap.region.ptr, Math.min(round, 0xfffffffe)) >>> 0;
  }

  // ---- single pages (JS reads of kernel memory, ~10 ns) --------------------------------------

  /** Distinct pages dirtied between the page's last two dirtyings, or -1 (dirtied at most once). */
  reuseDistance(page: number): number {
    this.#needTracker("reuseDistance");
    this.#check(page);
    const d = new DataView(this.kernel.memory.buffer).getUint32(this.#records!.ptr + page * 8 + 4, true);
    return d === HISTORY_NO_DISTANCE ? -1 : d;
  }

  /** Rounds the page was recorded dirty in, saturating at 255. */
  dirtyCount(page: number): number {
    this.#check(page);
    return new Uint8Array(this.kernel.memory.buffer)[this.#counts.ptr + page];
  }

  /** True when the page was dirty in the round recorded `roundsAgo` rounds ago (0..7). */
  dirtiedInRound(page: number, roundsAgo: number): boolean {
    this.#check(page);
    return this.roundBitmap(roundsAgo).get(page);
  }

  /** Round the page was last sent in, or -1 when never sent (65534 means ≥ 65534). */
  lastSentRound(page: number): number {
    this.#check(page);
    return new DataView(this.kernel.memory.buffer).getUint16(this.#sent.ptr + page * 2, true) - 1;
  }

  /**
   * The dirty bitmap recorded `roundsAgo` rounds ago (0..7), all zero before the history
   * has that many rounds. It is the history's own storage: read it, don't modify it; it
   * is overwritten 8 rounds later.
   */
  roundBitmap(roundsAgo: number): DirtyBitmap {
    if (!Number.isInteger(roundsAgo) || roundsAgo < 0 || roundsAgo >= HISTORY_ROUNDS) {
      throw new PagewireRangeError(
        "ROUNDS_AGO",
        `PageHistory: roundsAgo must be an integer in 0..${HISTORY_ROUNDS - 1}, got ${roundsAgo}`,
      );
    }
    return this.#ring[(this.#field(HISTORY_HEADER_HEAD) - roundsAgo) & (HISTORY_ROUNDS - 1)];
  }

  // ---- batch forms over a bitmap (kernel) -----------------------------------------------------

  /** Reuse distances (-1 = none) of the pages set in `bitmap`, in ascending page order. */
  reuseDistances(bitmap: DirtyBitmap): Int32Array {
    this.#needTracker("reuseDistances");
    return new Int32Array(this.#gather(bitmap, HISTORY_FIELD_DISTANCE).buffer);
  }

  /** Dirty counts of the pages set in `bitmap`, in ascending page order. */
  dirtyCounts(bitmap: DirtyBitmap): Uint32Array {
    return this.#gather(bitmap, HISTORY_FIELD_COUNT);
  }

  /** Last-sent rounds (-1 = never) of the pages set in `bitmap`, in ascending page order. */
  lastSentRounds(bitmap: DirtyBitmap): Int32Array {
    const v = new Int32Array(this.#gather(bitmap, HISTORY_FIELD_SENT).buffer);
    for (let i = 0; i < v.length; i++) v[i] -= 1;
    return v;
  }

  /** Sum and number of the dirty counts of the pages set in `bitmap` (for averages). */
  sumDirtyCounts(bitmap: DirtyBitmap): { sum: number; pages: number } {
    this.#peer(bitmap, "sumDirtyCounts");
    const out = this.#scratchRegion();
    const pages = this.kernel.raw.historySumCounts(this.#header.ptr, bitmap.region.ptr, out.ptr) >>> 0;
    const sum = Number(new DataView(this.kernel.memory.buffer).getBigUint64(out.ptr, true));
    return { sum, pages };
  }

  /** Overwrites `into` with the pages of `bitmap` whose dirty count is < `threshold`; returns how many. */
  selectDirtyCountBelow(bitmap: DirtyBitmap, threshold: number, into: DirtyBitmap): number {
    return this.#filter(bitmap, HISTORY_FIELD_COUNT, threshold, false, into);
  }

  /**
   * Overwrites `into` with the pages of `bitmap` whose reuse distance is ≥ `threshold`,
   * counting pages with no distance yet (dirtied at most once) as infinitely far.
   */
  selectReuseDistanceAtLeast(bitmap: DirtyBitmap, threshold: number, into: DirtyBitmap): number {
    this.#needTracker("selectReuseDistanceAtLeast");
    return this.#filter(bitmap, HISTORY_FIELD_DISTANCE, threshold, true, into);
  }

  /**
   * Overwrites `into` with the pages of `bitmap` whose weighted dirty rate
   * Σ weights[k] · dirtiedInRound(p, k) (k = 0..7) is ≥ `threshold`; returns how many.
   */
  selectWeightedRateAtLeast(
    bitmap: DirtyBitmap,
    weights: readonly number[],
    threshold: number,
    into: DirtyBitmap,
  ): number {
    this.#peer(bitmap, "selectWeightedRateAtLeast");
    this.#peer(into, "selectWeightedRateAtLeast");
    if (weights.length > HISTORY_ROUNDS)
      throw new PagewireRangeError("WEIGHTS", `PageHistory: at most ${HISTORY_ROUNDS} weights, got ${weights.length}`);
    const w = this.#scratchRegion();
    const f = new Float64Array(this.kernel.memory.buffer, w.ptr, HISTORY_ROUNDS);
    f.fill(0);
    weights.forEach((x, i) => (f[i] = x));
    return (
      this.kernel.raw.historyFilterWeighted(this.#header.ptr, bitmap.region.ptr, w.ptr, threshold, into.region.ptr) >>>
      0
    );
  }

  /** Returns all kernel memory; the history is unusable afterwards. */
  dispose(): void {
    for (const b of this.#ring) b.dispose();
    for (const r of this.#regions) this.kernel.free(r);
    if (this.#scratch) this.kernel.free(this.#scratch);
    this.#regions.length = 0;
  }

  // ---- internals ------------------------------------------------------------------------------

  #field(offset: number): number {
    return new DataView(this.kernel.memory.buffer).getUint32(this.#header.ptr + offset, true);
  }

  #scratchRegion(): KernelRegion {
    this.#scratch ??= this.kernel.alloc(HISTORY_ROUNDS * 8, 64);
    return this.#scratch;
  }

  #gather(bitmap: DirtyBitmap, field: number): Uint32Array {
    this.#peer(bitmap, "gather");
    const k = this.kernel;
    const n = bitmap.count();
    const r = k.alloc(Math.max(n * 4, 16), 64);
    try {
      const got = k.raw.historyGather(this.#header.ptr, bitmap.region.ptr, field, r.ptr, n) >>> 0;
      return k.u32(r).slice(0, got);
    } finally {
      k.free(r);
    }
  }

  #filter(bitmap: DirtyBitmap, field: number, threshold: number, atLeast: boolean, into: DirtyBitmap): number {
    this.#peer(bitmap, "select");
    this.#peer(into, "select");
    const t = Math.max(0, Math.min(0xffffffff, Math.ceil(threshold)));
    return (
      this.kernel.raw.historyFilter(this.#header.ptr, bitmap.region.ptr, field, t, atLeast ? 1 : 0, into.region.ptr) >>>
      0
    );
  }

  #needTracker(what: string): void {
    if (!this.tracksReuseDistance) {
      throw new PagewireRangeError(
        "NO_REUSE_TRACKER",
        `PageHistory.${what}: this history of ${this.pageCount} pages was created with { reuseDistance: false }`,
      );
    }
  }

  #check(page: number): void {
    if (!(page >= 0 && page < this.pageCount && Number.isInteger(page))) {
      throw new PagewireRangeError("PAGE_INDEX", `PageHistory: page ${page} is outside 0..${this.pageCount}`);
    }
  }

  #peer(b: DirtyBitmap, op: string): void {
    if (b.kernel !== this.kernel || b.pageCount !== this.pageCount) {
      throw new PagewireRangeError(
        "BITMAP_MISMATCH",
        `PageHistory.${op}: the bitmap must share the history's kernel and page count (${this.pageCount} vs ${b.pageCount})`,
      );
    }
  }
}
