// Dirty bitmaps and page-scan kernels.
//
// Layout: bit i of a bitmap is bit (i & 63) of the little-endian u64 word i >> 6
// (equivalently bit (i & 31) of u32 word i >> 5, which is what JS writers use with
// Atomics.or). Every bitmap is padded to a multiple of 64 bytes (`words` is a multiple
// of 8) and its padding bits are zero; the TS wrapper keeps both invariants, so the
// kernels below never look at a partial chunk.
//
// Concurrency: a guest thread may set bits with Atomics.or at any time. Kernels that
// read a bitmap another thread writes read it racily (a bit set meanwhile is seen now
// or by the next harvest); kernels that clear bits or set bits use atomic RMW.

import { PAGE_SIZE } from "./abi";

// ---- helpers -------------------------------------------------------------------------

/** Debug builds trap unless `words` covers whole 64-byte chunks (the layout invariant above). */
@inline function assertWholeChunks(words: u32): void {
  assert((words & 7) == 0, "bitmap words not a multiple of 8");
}

/** True when any of the 64 bytes at p is non-zero. */
@inline function anyBits64(p: usize): bool {
  return v128.any_true(
    v128.or(v128.or(v128.load(p), v128.load(p, 16)), v128.or(v128.load(p, 32), v128.load(p, 48))),
  );
}

/** True when all of the 64 bytes at p are 0xff. */
@inline function allBits64(p: usize): bool {
  return !v128.any_true(
    v128.not(v128.and(v128.and(v128.load(p), v128.load(p, 16)), v128.and(v128.load(p, 32), v128.load(p, 48)))),
  );
}

// ---- counting and collecting ------------------------------------------------------------

/** Number of set bits in `words` u64 words at `bits`. */
export function bitmapCount(bits: usize, words: u32): u32 {
  assertWholeChunks(words);
  const end = bits + (<usize>words << 3);
  let c0: u64 = 0, c1: u64 = 0;
  for (let p = bits; p < end; p += 64) {
    if (!anyBits64(p)) continue;
    c0 += popcnt<u64>(load<u64>(p)) + popcnt<u64>(load<u64>(p, 8)) + popcnt<u64>(load<u64>(p, 16)) + popcnt<u64>(load<u64>(p, 24));
    c1 += popcnt<u64>(load<u64>(p, 32)) + popcnt<u64>(load<u64>(p, 40)) + popcnt<u64>(load<u64>(p, 48)) + popcnt<u64>(load<u64>(p, 56));
  }
  return <u32>(c0 + c1);
}

/** Stores the indices of the set bits of word x (page numbers from b) at o, exactly; returns the new o. */
@inline function storeWordExact(o: usize, x: u64, b: u32): usize {
  while (x) {
    store<u32>(o, b + <u32>ctz<u64>(x));
    o += 4;
    x &= x - 1;
  }
  return o;
}

/** Bit j set when u64 word j of the 64-byte chunk at p is non-zero (8 bits). */
@inline function nonZeroWords64(p: usize): u32 {
  const z = v128.splat<i64>(0);
  return i64x2.bitmask(i64x2.ne(v128.load(p), z))
    | (i64x2.bitmask(i64x2.ne(v128.load(p, 16), z)) << 2)
    | (i64x2.bitmask(i64x2.ne(v128.load(p, 32), z)) << 4)
    | (i64x2.bitmask(i64x2.ne(v128.load(p, 48), z)) << 6);
}

/**
 * Writes the ascending indices of set bits as u32 at `out`, at most `capacity` of them;
 * returns how many were written (== capacity may mean more remain).
 *
 * Empty 64-byte chunks are skipped. A chunk with at most two non-zero words visits only
 * those words (the sparse case); a fuller chunk writes every word with two unconditional
 * stores and loops only for words with more than two bits (after Lemire, "decoding
 * bitmaps"), avoiding one mispredicted branch per bit. Those stray stores land at most
 * two slots past the last index, so that path runs only while a chunk's worth of room
 * (514 slots) is left.
 */
export function bitmapCollect(bits: usize, words: u32, out: usize, capacity: u32): u32 {
  assertWholeChunks(words);
  const end = bits + (<usize>words << 3);
  const limit = out + (<usize>capacity << 2);
  let o = out;
  for (let p = bits; p < end; p += 64) {
    if (!anyBits64(p)) continue;
    let mask = nonZeroWords64(p);
    let base = <u32>((p - bits) << 3);
    if (popcnt<u32>(mask) > 2 && o + (514 << 2) <= limit) {
      for (let j: usize = 0; j < 64; j += 8) {
        let x = load<u64>(p + j);
        let b = base + <u32>(j << 3);
        let c = <usize>popcnt<u64>(x);
        store<u32>(o, b + <u32>ctz<u64>(x));
        x &= x - 1;
        store<u32>(o, b + <u32>ctz<u64>(x), 4);
        if (c > 2) storeWordExact(o + 8, x & (x - 1), b);
        o += c << 2;
      }
      continue;
    }
    while (mask) {
      let j = ctz<u32>(mask);
      let x = load<u64>(p + (<usize>j << 3));
      let n = <usize>popcnt<u64>(x);
      if (o + (n << 2) > limit) {
        // fill what fits and stop
        while (o < limit) { store<u32>(o, base + (j << 6) + <u32>ctz<u64>(x)); o += 4; x &= x - 1; }
        return capacity;
      }
      o = storeWordExact(o, x, base + (j << 6));
      mask &= mask - 1;
    }
  }
  assert(o <= limit, "bitmapCollect wrote past capacity");
  return <u32>((o - out) >> 2);
}

/** Index of the first set bit at or after `from`, or -1. */
export function bitmapNextSet(bits: usize, words: u32, from: u32): i32 {
  let w = from >> 6;
  if (w >= words) return -1;
  let x = load<u64>(bits + (<usize>w << 3)) & (<u64>-1 << <u64>(from & 63));
  while (true) {
    if (x) return <i32>((w << 6) + <u32>ctz<u64>(x));
    w++;
    // skip whole zero chunks once aligned
    while ((w & 7) == 0 && w < words && !anyBits64(bits + (<usize>w << 3))) w += 8;
    if (w >= words) return -1;
    x = load<u64>(bits + (<usize>w << 3));
  }
}

/** Number of runs of consecutive set bits. */
export function bitmapRangeCount(bits: usize, words: u32): u32 {
  assertWholeChunks(words);
  const end = bits + (<usize>words << 3);
  let n: u64 = 0;
  let carry: u64 = 0; // top bit of the previous word
  for (let p = bits; p < end; p += 64) {
    if (!anyBits64(p)) { carry = 0; continue; }
    let x0 = load<u64>(p), x1 = load<u64>(p, 8), x2 = load<u64>(p, 16), x3 = load<u64>(p, 24);
    let x4 = load<u64>(p, 32), x5 = load<u64>(p, 40), x6 = load<u64>(p, 48), x7 = load<u64>(p, 56);
    // a run starts at each set bit whose lower neighbour is clear
    n += popcnt<u64>(x0 & ~((x0 << 1) | carry)) + popcnt<u64>(x1 & ~((x1 << 1) | (x0 >> 63)))
      + popcnt<u64>(x2 & ~((x2 << 1) | (x1 >> 63))) + popcnt<u64>(x3 & ~((x3 << 1) | (x2 >> 63)))
      + popcnt<u64>(x4 & ~((x4 << 1) | (x3 >> 63))) + popcnt<u64>(x5 & ~((x5 << 1) | (x4 >> 63)))
      + popcnt<u64>(x6 & ~((x6 << 1) | (x5 >> 63))) + popcnt<u64>(x7 & ~((x7 << 1) | (x6 >> 63)));
    carry = x7 >> 63;
  }
  return <u32>n;
}

/**
 * Writes runs of set bits as (first, count) u32 pairs at `out`; returns the number of
 * runs. `capacity` is the room at `out` in runs (size it by bitmapRangeCount).
 *
 * A run boundary is a bit that differs from the bit below it: t = x ^ (x << 1 | carry).
 * Boundaries alternate start, end, start, end …, so the runs are the boundary positions
 * taken in pairs. Boundary words are written like bitmapCollect's dense path (two
 * unconditional stores, a loop only past two boundaries) while a chunk's worth of room
 * is left, and exactly otherwise.
 */
export function bitmapRanges(bits: usize, words: u32, out: usize, capacity: u32): u32 {
  assertWholeChunks(words);
  const end = bits + (<usize>words << 3);
  const limit = out + (<usize>capacity << 3);
  let o = out;
  let carry: u64 = 0;
  for (let p = bits; p < end; p += 64) {
    // a chunk equal to the carried bit everywhere holds no boundary
    if (carry ? allBits64(p) : !anyBits64(p)) continue;
    let base = <u32>((p - bits) << 3);
    let roomy = o + (514 << 2) <= limit;
    for (let j: usize = 0; j < 64; j += 8) {
      let x = load<u64>(p + j);
      let t = x ^ ((x << 1) | carry);
      carry = x >> 63;
      let b = base + <u32>(j << 3);
      if (!roomy) { o = storeWordExact(o, t, b); continue; }
      let c = <usize>popcnt<u64>(t);
      store<u32>(o, b + <u32>ctz<u64>(t));
      t &= t - 1;
      store<u32>(o, b + <u32>ctz<u64>(t), 4);
      if (c > 2) storeWordExact(o + 8, t & (t - 1), b);
      o += c << 2;
    }
  }
  if (carry) { store<u32>(o, words << 6); o += 4; } // a run reaching the last bit
  // boundary pairs (start, end) → (first, count)
  for (let q = out; q < o; q += 8) store<u32>(q, load<u32>(q, 4) - load<u32>(q), 4);
  return <u32>((o - out) >> 3);
}

// ---- in-place set operations (dst op= src) ---------------------------------------------

export function bitmapOr(dst: usize, src: usize, words: u32): void {
  assertWholeChunks(words);
  const n = <usize>words << 3;
  for (let o: usize = 0; o < n; o += 16) v128.store(dst + o, v128.or(v128.load(dst + o), v128.load(src + o)));
}

export function bitmapAnd(dst: usize, src: usize, words: u32): void {
  assertWholeChunks(words);
  const n = <usize>words << 3;
  for (let o: usize = 0; o < n; o += 16) v128.store(dst + o, v128.and(v128.load(dst + o), v128.load(src + o)));
}

export function bitmapAndNot(dst: usize, src: usize, words: u32): void {
  assertWholeChunks(words);
  const n = <usize>words << 3;
  for (let o: usize = 0; o < n; o += 16) v128.store(dst + o, v128.andnot(v128.load(dst + o), v128.load(src + o)));
}

export function bitmapXor(dst: usize, src: usize, words: u32): void {
  assertWholeChunks(words);
  const n = <usize>words << 3;
  for (let o: usize = 0; o < n; o += 16) v128.store(dst + o, v128.xor(v128.load(dst + o), v128.load(src + o)));
}

/** Sets `count` bits from `first`. Edge words use atomic OR so a concurrent writer loses nothing. */
export function bitmapSetRange(bits: usize, first: u32, count: u32): void {
  if (count == 0) return;
  const last = first + count - 1;
  const fw = first >> 6, lw = last >> 6;
  const lo = <u64>-1 << <u64>(first & 63);
  const hi = <u64>-1 >> <u64>(63 - (last & 63));
  if (fw == lw) { atomic.or<u64>(bits + (<usize>fw << 3), lo & hi); return; }
  atomic.or<u64>(bits + (<usize>fw << 3), lo);
  for (let w = fw + 1; w < lw; w++) store<u64>(bits + (<usize>w << 3), <u64>-1); // OR with all ones is all ones
  atomic.or<u64>(bits + (<usize>lw << 3), hi);
}

// ---- harvest: swap and clear (KVM's get-and-clear dirty log) ----------------------------

/**
 * Moves every set bit of `src` into `dst` (overwriting dst) and clears it in `src`;
 * returns the number of bits moved. With `concurrent` set, non-zero words are taken with an
 * atomic exchange, so a concurrent Atomics.or is either in this harvest or stays for the
 * next: no bit lost, none counted twice.
 */
export function bitmapHarvest(src: usize, dst: usize, words: u32, concurrent: i32): u32 {
  assertWholeChunks(words);
  const n = <usize>words << 3;
  let c: u64 = 0;
  for (let o: usize = 0; o < n; o += 16) {
    let v = v128.load(src + o);
    if (!v128.any_true(v)) { v128.store(dst + o, v128.splat<i64>(0)); continue; }
    let a: u64, b: u64;
    if (concurrent) {
      a = atomic.xchg<u64>(src + o, 0);
      b = atomic.xchg<u64>(src + o + 8, 0);
    } else {
      a = i64x2.extract_lane(v, 0);
      b = i64x2.extract_lane(v, 1);
      v128.store(src + o, v128.splat<i64>(0));
    }
    store<u64>(dst + o, a);
    store<u64>(dst + o, b, 8);
    c += popcnt<u64>(a) + popcnt<u64>(b);
  }
  return <u32>c;
}

// ---- page scans ----------------------------------------------------------------------------

/** True when the PAGE_SIZE bytes at a and b are equal. */
@inline export function pagesEqual(a: usize, b: usize): bool {
  for (let o: usize = 0; o < PAGE_SIZE; o += 64) {
    let d = v128.or(
      v128.or(v128.xor(v128.load(a + o), v128.load(b + o)), v128.xor(v128.load(a + o, 16), v128.load(b + o, 16))),
      v128.or(v128.xor(v128.load(a + o, 32), v128.load(b + o, 32)), v128.xor(v128.load(a + o, 48), v128.load(b + o, 48))),
    );
    if (v128.any_true(d)) return false;
  }
  return true;
}

/** True when the PAGE_SIZE bytes at p are all zero. */
@inline export function pageIsZero(p: usize): bool {
  for (let o: usize = 0; o < PAGE_SIZE; o += 128) {
    let d = v128.or(
      v128.or(v128.or(v128.load(p + o), v128.load(p + o, 16)), v128.or(v128.load(p + o, 32), v128.load(p + o, 48))),
      v128.or(v128.or(v128.load(p + o, 64), v128.load(p + o, 80)), v128.or(v128.load(p + o, 96), v128.load(p + o, 112))),
    );
    if (v128.any_true(d)) return false;
  }
  return true;
}

/** Sets bit i of `bits` for each page i < pageCount whose content differs between a and b; returns how many. */
export function diffPages(a: usize, b: usize, pageCount: u32, bits: usize): u32 {
  let total: u32 = 0;
  for (let w: u32 = 0; w << 6 < pageCount; w++) {
    let first = w << 6;
    let n = min<u32>(64, pageCount - first);
    let acc: u64 = 0;
    for (let i: u32 = 0; i < n; i++) {
      let off = <usize>(first + i) * PAGE_SIZE;
      if (!pagesEqual(a + off, b + off)) acc |= <u64>1 << <u64>i;
    }
    if (acc) { atomic.or<u64>(bits + (<usize>w << 3), acc); total += <u32>popcnt<u64>(acc); }
  }
  return total;
}

/** Sets bit i of `bits` for each all-zero page i < pageCount at `mem`; returns how many. */
export function zeroPages(mem: usize, pageCount: u32, bits: usize): u32 {
  let total: u32 = 0;
  for (let w: u32 = 0; w << 6 < pageCount; w++) {
    let first = w << 6;
    let n = min<u32>(64, pageCount - first);
    let acc: u64 = 0;
    for (let i: u32 = 0; i < n; i++) {
      if (pageIsZero(mem + <usize>(first + i) * PAGE_SIZE)) acc |= <u64>1 << <u64>i;
    }
    if (acc) { atomic.or<u64>(bits + (<usize>w << 3), acc); total += <u32>popcnt<u64>(acc); }
  }
  return total;
}

/** 1 when the page at p is all zero, else 0. */
export function isZeroPage(p: usize): i32 {
  return pageIsZero(p) ? 1 : 0;
}

