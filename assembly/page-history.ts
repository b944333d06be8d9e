// Per-page dirty history and reuse distance.
//
// A history is described by a header of u32 fields in kernel memory (offsets: the
// HISTORY_HEADER_* constants of assembly/abi.ts; the TS wrapper,
// src/policy/page-history.ts, allocates everything and fills it in):
//
//   off  field        meaning
//    0   pageCount    pages tracked
//    4   words        u64 words per bitmap (multiple of 8, as in assembly/bitmap.ts)
//    8   counts       u8 per page: saturating count of rounds the page was dirty in (max 255)
//   12   lastSent     u16 per page: round last sent, encoded r + 1 (0 = never sent),
//                     saturating at 0xffff (read as "round ≥ 65534")
//   16   stamps       u32 per page, stride 8: last-dirty stamp, 0 = never    } reuse
//   20   dists        u32 per page, stride 8 (= stamps + 4): latest reuse    } distance
//                     distance, 0xffffffff = none (interleaved with the stamp: one cache line)
//   24   fen          u32 Fenwick tree, 1-based, cap + 1 entries             } tracker
//   28   cap          stamps available before a compaction (≥ pageCount + 1)
//   32   nextStamp    next stamp to hand out (starts at 1)
//   36   live         pages that hold a stamp (= marks in the tree)
//   40   compactions  how many times stamps were renumbered
//   44   ring         pointer to 8 u32 pointers: the bitmaps of the last 8 rounds
//   48   head         ring slot of the most recent round
//   52   rounds       rounds recorded so far
//   56   owner        u32 per stamp 1..cap: the page that took the stamp      } tracker
//   60   active       stamps the tree currently spans (≤ cap)
//   64   minActive    smallest active span after a compaction (default 65536)
//
// Memory per page: ring 8 bits + count 1 B + last sent 2 B = 4 bytes (the "≤ 4 bytes
// per page" history). The reuse-distance tracker is separate and optional: stamp 4 B +
// distance 4 B (interleaved) + Fenwick tree 4 B and owner 4 B per stamp, with
// cap = 1.5 × pageCount stamps: 20 B/page allocated. Only the tree's active part is
// touched, so a small working set keeps the tree small and in cache.
//
// Reuse distance (see: Alamdari & Zamanifar 2012, "A reuse distance based precopy
// approach to improve live migration of virtual machines"): every dirtying of a page
// takes the next stamp t; the tree holds one mark at each page's last stamp. When page p
// with last stamp s is dirtied again, the pages dirtied in between, counted once each,
// are exactly the marks after s: distance = live − prefix(s). Then the mark moves from
// s to t. Cost O(log active) per dirtying. When the active stamps run out, the live
// stamps are renumbered 1..live in order (walking the owner array) and the active span
// becomes max(minActive, 4 × live) ≤ cap, in O(active): amortised O(1) per dirtying,
// since at least active − live ≥ min(3 × live, pageCount / 2) stamps pass between two.
// see: Fenwick 1994, "A new data structure for cumulative frequency tables".

import {
  HISTORY_ERR_NO_TRACKER, HISTORY_ERR_PAGE, HISTORY_FIELD_COUNT, HISTORY_FIELD_DISTANCE, HISTORY_HEADER_ACTIVE,
  HISTORY_HEADER_CAP, HISTORY_HEADER_COMPACTIONS, HISTORY_HEADER_COUNTS, HISTORY_HEADER_DISTS,
  HISTORY_HEADER_FEN, HISTORY_HEADER_HEAD, HISTORY_HEADER_LIVE, HISTORY_HEADER_MIN_ACTIVE, HISTORY_HEADER_NEXT,
  HISTORY_HEADER_OWNER, HISTORY_HEADER_PAGES, HISTORY_HEADER_RING, HISTORY_HEADER_ROUNDS, HISTORY_HEADER_SENT,
  HISTORY_HEADER_STAMPS, HISTORY_HEADER_WORDS, HISTORY_NO_DISTANCE, HISTORY_ROUNDS, MAX_DIRTY_COUNT,
} from "./abi";

// ---- Fenwick tree ------------------------------------------------------------------------

@inline function fenAdd(fen: usize, cap: u32, i: u32, delta: u32): void {
  while (i <= cap) {
    let q = fen + (<usize>i << 2);
    store<u32>(q, load<u32>(q) + delta); // delta 0xffffffff is −1 (mod 2^32)
    i += i & (~i + 1);
  }
}

@inline function fenPrefix(fen: usize, i: u32): u32 {
  let s: u32 = 0;
  while (i) {
    s += load<u32>(fen + (<usize>i << 2));
    i &= i - 1;
  }
  return s;
}

/**
 * Renumbers the live stamps to 1..live keeping their order, then sizes the active part of
 * the tree to max(minActive, 4 × live) (at most cap) and rebuilds it; returns the next
 * stamp. O(old active + new active): the owner array names the page of each stamp, and
 * a stamp is live when its page still holds it.
 */
function compactStamps(h: usize): u32 {
  const stamps = <usize>load<u32>(h + HISTORY_HEADER_STAMPS);
  const owner = <usize>load<u32>(h + HISTORY_HEADER_OWNER);
  const fen = <usize>load<u32>(h + HISTORY_HEADER_FEN);
  const cap = load<u32>(h + HISTORY_HEADER_CAP);
  const old = load<u32>(h + HISTORY_HEADER_ACTIVE);
  const live = load<u32>(h + HISTORY_HEADER_LIVE);
  // 1. live stamps in ascending order take ranks 1..live (r ≤ s: in place is safe)
  let r: u32 = 0;
  for (let s: u32 = 1; s <= old; s++) {
    let p = load<u32>(owner + (<usize>s << 2));
    let q = stamps + (<usize>p << 3);
    if (load<u32>(q) == s) {
      r++;
      store<u32>(owner + (<usize>r << 2), p);
      store<u32>(q, r);
    }
  }
  // 2. new active size, marks at 1..live, then the linear Fenwick build
  const active = <u32>min<u64>(<u64>cap, max<u64>(<u64>load<u32>(h + HISTORY_HEADER_MIN_ACTIVE), <u64>live << 2));
  for (let i: u32 = 1; i <= active; i++) store<u32>(fen + (<usize>i << 2), i <= live ? 1 : 0);
  for (let i: u32 = 1; i <= active; i++) {
    let j = i + (i & (~i + 1));
    if (j <= active) {
      let q = fen + (<usize>j << 2);
      store<u32>(q, load<u32>(q) + load<u32>(fen + (<usize>i << 2)));
    }
  }
  store<u32>(h + HISTORY_HEADER_ACTIVE, active);
  store<u32>(h + HISTORY_HEADER_COMPACTIONS, load<u32>(h + HISTORY_HEADER_COMPACTIONS) + 1);
  return live + 1;
}

/** One dirtying of page p in the reuse tracker (state kept in the header's next/live/active). */
@inline function touchPage(h: usize, p: u32, stamps: usize, dists: usize, fen: usize): void {
  let t = load<u32>(h + HISTORY_HEADER_NEXT);
  if (t > load<u32>(h + HISTORY_HEADER_ACTIVE)) {
    t = compactStamps(h);
  }
  const active = load<u32>(h + HISTORY_HEADER_ACTIVE);
  let live = load<u32>(h + HISTORY_HEADER_LIVE);
  let q = stamps + (<usize>p << 3);
  let s = load<u32>(q);
  if (s) {
    store<u32>(dists + (<usize>p << 3), live - fenPrefix(fen, s));
    fenAdd(fen, active, s, <u32>-1);
  } else {
    store<u32>(h + HISTORY_HEADER_LIVE, live + 1);
  }
  fenAdd(fen, active, t, 1);
  store<u32>(q, t);
  store<u32>(<usize>load<u32>(h + HISTORY_HEADER_OWNER) + (<usize>t << 2), p);
  store<u32>(h + HISTORY_HEADER_NEXT, t + 1);
}

@inline function bumpCount(counts: usize, p: u32): void {
  let q = counts + <usize>p;
  let c = load<u8>(q);
  if (c != <u8>MAX_DIRTY_COUNT) store<u8>(q, c + 1);
}

// ---- recording ---------------------------------------------------------------------------

/**
 * Records an ordered write trace of `count` u32 page indices at `pages` in the reuse
 * tracker: exact distances. Dirty counts and round bits are left to historyRecordRound
 * (counts count rounds, however the writes were traced). Returns
 * `count`, or HISTORY_ERR_PAGE (nothing recorded) when an index is out of range.
 */
export function historyRecordWrites(h: usize, pages: usize, count: u32): i32 {
  const n = load<u32>(h + HISTORY_HEADER_PAGES);
  const fen = <usize>load<u32>(h + HISTORY_HEADER_FEN);
  if (!fen) return HISTORY_ERR_NO_TRACKER;
  for (let i: u32 = 0; i < count; i++) {
    if (load<u32>(pages + (<usize>i << 2)) >= n) return HISTORY_ERR_PAGE;
  }
  const stamps = <usize>load<u32>(h + HISTORY_HEADER_STAMPS);
  const dists = <usize>load<u32>(h + HISTORY_HEADER_DISTS);
  for (let i: u32 = 0; i < count; i++) {
    let p = load<u32>(pages + (<usize>i << 2));
    touchPage(h, p, stamps, dists, fen);
  }
  return <i32>count;
}

/**
 * Records one round's dirty bitmap at `bits`: it becomes the newest ring slot (the
 * oldest is overwritten), each dirty page's count is bumped, and, with `withDistances`,
 * the pages are fed to the reuse tracker in ascending index order — pages of one round
 * are stamped in index order, so distances are round-granular: a page re-dirtied counts
 * the distinct pages of its own earlier rounds stamped after it plus every page of later
 * rounds, and the lower-indexed pages of the current round. Returns the dirty page count.
 */
export function historyRecordRound(h: usize, bits: usize, withDistances: i32): i32 {
  const words = load<u32>(h + HISTORY_HEADER_WORDS);
  assert((words & 7) == 0, "history words not a multiple of 8");
  const fen = <usize>load<u32>(h + HISTORY_HEADER_FEN);
  if (withDistances && !fen) return HISTORY_ERR_NO_TRACKER;
  const counts = <usize>load<u32>(h + HISTORY_HEADER_COUNTS);
  const stamps = <usize>load<u32>(h + HISTORY_HEADER_STAMPS);
  const dists = <usize>load<u32>(h + HISTORY_HEADER_DISTS);
  const ring = <usize>load<u32>(h + HISTORY_HEADER_RING);
  const head = (load<u32>(h + HISTORY_HEADER_HEAD) + 1) & (HISTORY_ROUNDS - 1);
  const slot = <usize>load<u32>(ring + (<usize>head << 2));
  store<u32>(h + HISTORY_HEADER_HEAD, head);
  store<u32>(h + HISTORY_HEADER_ROUNDS, load<u32>(h + HISTORY_HEADER_ROUNDS) + 1);
  const bytes = <usize>words << 3;
  let total: u32 = 0;
  for (let o: usize = 0; o < bytes; o += 64) {
    let a = v128.load(bits + o), b = v128.load(bits + o, 16), c = v128.load(bits + o, 32), d = v128.load(bits + o, 48);
    v128.store(slot + o, a);
    v128.store(slot + o, b, 16);
    v128.store(slot + o, c, 32);
    v128.store(slot + o, d, 48);
    if (!v128.any_true(v128.or(v128.or(a, b), v128.or(c, d)))) continue;
    for (let j: usize = 0; j < 64; j += 8) {
      let x = load<u64>(bits + o + j);
      let base = <u32>((o + j) << 3);
      total += <u32>popcnt<u64>(x);
      while (x) {
        let p = base + <u32>ctz<u64>(x);
        bumpCount(counts, p);
        if (withDistances) touchPage(h, p, stamps, dists, fen);
        x &= x - 1;
      }
    }
  }
  return <i32>total;
}

/** Sets the last-sent round of every page set in `bits` to `round` (stored round + 1, saturating). */
export function historyMarkSent(h: usize, bits: usize, round: u32): u32 {
  const words = load<u32>(h + HISTORY_HEADER_WORDS);
  const sent = <usize>load<u32>(h + HISTORY_HEADER_SENT);
  const code = <u16>min<u32>(round + 1, 0xffff);
  const bytes = <usize>words << 3;
  let total: u32 = 0;
  for (let o: usize = 0; o < bytes; o += 8) {
    let x = load<u64>(bits + o);
    let base = <u32>(o << 3);
    while (x) {
      store<u16>(sent + (<usize>(base + <u32>ctz<u64>(x)) << 1), code);
      total++;
      x &= x - 1;
    }
  }
  return total;
}

// ---- batch queries and filters -----------------------------------------------------------

/** Page p's value of `field`: dirty count, reuse distance (HISTORY_NO_DISTANCE = none) or encoded last-sent round. */
@inline function fieldValue(field: u32, counts: usize, dists: usize, sent: usize, p: usize): u32 {
  return field == HISTORY_FIELD_COUNT ? <u32>load<u8>(counts + p)
    : field == HISTORY_FIELD_DISTANCE ? (dists ? load<u32>(dists + (p << 3)) : HISTORY_NO_DISTANCE)
    : <u32>load<u16>(sent + (p << 1));
}

/**
 * For each page set in `bits`, ascending, writes one u32 to `out`: field 0 the dirty
 * count, 1 the reuse distance (0xffffffff = none), 2 the encoded last-sent round.
 * Writes at most `capacity`; returns how many were written.
 */
export function historyGather(h: usize, bits: usize, field: u32, out: usize, capacity: u32): u32 {
  const words = load<u32>(h + HISTORY_HEADER_WORDS);
  const counts = <usize>load<u32>(h + HISTORY_HEADER_COUNTS);
  const sent = <usize>load<u32>(h + HISTORY_HEADER_SENT);
  const dists = <usize>load<u32>(h + HISTORY_HEADER_DISTS);
  const bytes = <usize>words << 3;
  let k: u32 = 0;
  for (let o: usize = 0; o < bytes; o += 8) {
    let x = load<u64>(bits + o);
    let base = <u32>(o << 3);
    while (x) {
      if (k >= capacity) return k;
      let p = <usize>(base + <u32>ctz<u64>(x));
      let v = fieldValue(field, counts, dists, sent, p);
      store<u32>(out + (<usize>k << 2), v);
      k++;
      x &= x - 1;
    }
  }
  return k;
}

/** Sum of the dirty counts of the pages set in `bits`, written as u64 at `out`; returns the page count. */
export function historySumCounts(h: usize, bits: usize, out: usize): u32 {
  const words = load<u32>(h + HISTORY_HEADER_WORDS);
  const counts = <usize>load<u32>(h + HISTORY_HEADER_COUNTS);
  const bytes = <usize>words << 3;
  let sum: u64 = 0;
  let pages: u32 = 0;
  for (let o: usize = 0; o < bytes; o += 8) {
    let x = load<u64>(bits + o);
    let base = <u32>(o << 3);
    while (x) {
      sum += <u64>load<u8>(counts + <usize>(base + <u32>ctz<u64>(x)));
      pages++;
      x &= x - 1;
    }
  }
  store<u64>(out, sum);
  return pages;
}

/**
 * Overwrites `out` with the pages of `bits` whose field (0 count, 1 reuse distance,
 * 2 encoded last-sent) compares to `threshold`: `atLeast` != 0 keeps value ≥ threshold,
 * else value < threshold (unsigned: a missing distance 0xffffffff is "infinitely far").
 * Returns how many pages were kept.
 */
export function historyFilter(h: usize, bits: usize, field: u32, threshold: u32, atLeast: i32, out: usize): u32 {
  const words = load<u32>(h + HISTORY_HEADER_WORDS);
  const counts = <usize>load<u32>(h + HISTORY_HEADER_COUNTS);
  const sent = <usize>load<u32>(h + HISTORY_HEADER_SENT);
  const dists = <usize>load<u32>(h + HISTORY_HEADER_DISTS);
  const bytes = <usize>words << 3;
  let total: u32 = 0;
  for (let o: usize = 0; o < bytes; o += 8) {
    let x = load<u64>(bits + o);
    let keep: u64 = 0;
    let base = <u32>(o << 3);
    while (x) {
      let b = ctz<u64>(x);
      let p = <usize>(base + <u32>b);
      let v = fieldValue(field, counts, dists, sent, p);
      if ((v >= threshold) == (atLeast != 0)) keep |= <u64>1 << b;
      x &= x - 1;
    }
    store<u64>(out + o, keep);
    total += <u32>popcnt<u64>(keep);
  }
  return total;
}

/**
 * Overwrites `out` with the pages of `bits` whose weighted dirty rate
 * Σ_k weights[k] · dirtied(p, k rounds ago), k = 0..7 (8 f64 at `weights`), is ≥
 * `threshold`. Returns how many pages were kept.
 */
export function historyFilterWeighted(h: usize, bits: usize, weights: usize, threshold: f64, out: usize): u32 {
  const words = load<u32>(h + HISTORY_HEADER_WORDS);
  const ring = <usize>load<u32>(h + HISTORY_HEADER_RING);
  const head = load<u32>(h + HISTORY_HEADER_HEAD);
  const bytes = <usize>words << 3;
  let total: u32 = 0;
  for (let o: usize = 0; o < bytes; o += 8) {
    let x = load<u64>(bits + o);
    if (!x) { store<u64>(out + o, 0); continue; }
    // acc: for each bit position, the rate; only set bits are evaluated
    let keep: u64 = 0;
    while (x) {
      let b = ctz<u64>(x);
      let rate: f64 = 0;
      for (let k: u32 = 0; k < 8; k++) {
        let slot = <usize>load<u32>(ring + (<usize>((head - k) & (HISTORY_ROUNDS - 1)) << 2));
        if ((load<u64>(slot + o) >> b) & 1) rate += load<f64>(weights + (<usize>k << 3));
      }
      if (rate >= threshold) keep |= <u64>1 << b;
      x &= x - 1;
    }
    store<u64>(out + o, keep);
    total += <u32>popcnt<u64>(keep);
  }
  return total;
}
