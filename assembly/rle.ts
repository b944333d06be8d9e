// RLE: a run-length page codec for pages made of long repeated byte values (freed
// kernel memory poisoned with 0xcc, memset pages, zero-padded buffers).
//
//   page    = item+                       the items cover exactly 4096 bytes
//   item    = run | literal
//   run     = length(n << 1 | 1) byte     n ≥ 1 copies of one byte
//   literal = length(n << 1) byte{n}      n ≥ 1 bytes as they are
//   length  = ULEB128 in 1 or 2 bytes: 0xxxxxxx | 1xxxxxxx 0xxxxxxx, canonical (a
//             2-byte length has a non-zero second byte), so n ≤ 4096 always fits
//
// Encoder (deterministic, the oracle in test/support mirrors it): at offset i, when the
// 8 bytes from i are equal, emit a run as long as the byte repeats; otherwise emit a
// literal up to the next offset x whose 8 bytes from x are equal (or the page end).
// Returns the encoded length, or -1 when it would exceed dlen (send the page raw).
//
// Decoder: rejects a truncated length or literal, a length over 2 bytes or not
// canonical, n = 0, items past the page end, input that stops before the page is
// covered or goes on after it. The whole input is validated before the page is written.
//
// see: Ma et al., "ME2: Efficient Live Migration of Virtual Machine With Memory
//      Exploration and Encoding" (IEEE CLUSTER 2012) — run-length encoding of pages;
//      migration/xbzrle.c for the ULEB128 lengths.
//
// SIMD: "byte equals the next byte" bitmasks (i8x16.shuffle + eq + bitmask) per 64-byte
// block; 7 consecutive set bits mark where a run of 8 starts (found with ctz); a run's end
// is the ctz of a splat-compare bitmask.

import { PAGE_SIZE, RLE_CORRUPT, RLE_OVERFLOW } from "./abi";

const MIN_RUN: usize = 8;

// ---- scanning ----------------------------------------------------------------------------

/** Byte k set: page[o + k] == page[o + k + 1], for the 64-byte block at o (bit of 4095 clear). */
@inline function nextEqualMask(p: usize, o: usize): u64 {
  let v0 = v128.load(p + o);
  let v1 = v128.load(p + o, 16);
  let v2 = v128.load(p + o, 32);
  let v3 = v128.load(p + o, 48);
  let last = o + 64 >= PAGE_SIZE;
  let v4 = last ? v3 : v128.load(p + o, 64);
  let m = <u64>i8x16.bitmask(i8x16.eq(v0, i8x16.shuffle(v0, v1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)))
    | (<u64>i8x16.bitmask(i8x16.eq(v1, i8x16.shuffle(v1, v2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16))) << 16)
    | (<u64>i8x16.bitmask(i8x16.eq(v2, i8x16.shuffle(v2, v3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16))) << 32)
    | (<u64>i8x16.bitmask(i8x16.eq(v3, i8x16.shuffle(v3, v4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16))) << 48);
  return last ? m & ~(<u64>1 << 63) : m;
}

/** First offset x ≥ i whose MIN_RUN bytes from x are equal, or PAGE_SIZE. */
@inline function findRunStart(p: usize, i: usize): usize {
  if (i >= PAGE_SIZE) return PAGE_SIZE;
  let o = i & ~(<usize>63);
  let lo = nextEqualMask(p, o);
  let hi: u64 = o + 64 < PAGE_SIZE ? nextEqualMask(p, o + 64) : 0;
  let below = <u64>-1 << <u64>(i & 63);
  while (true) {
    // bit x of f: bits x .. x+6 of the 128-bit window (lo, hi) are all set
    let f = lo & below;
    if (f) {
      f &= (lo >> 1) | (hi << 63);
      f &= (lo >> 2) | (hi << 62);
      f &= (lo >> 3) | (hi << 61);
      f &= (lo >> 4) | (hi << 60);
      f &= (lo >> 5) | (hi << 59);
      f &= (lo >> 6) | (hi << 58);
      if (f) return o + <usize>ctz<u64>(f);
    }
    o += 64;
    if (o >= PAGE_SIZE) return PAGE_SIZE;
    below = <u64>-1;
    lo = hi;
    hi = o + 64 < PAGE_SIZE ? nextEqualMask(p, o + 64) : 0;
  }
}

/** First offset ≥ i whose byte differs from c, or PAGE_SIZE. */
@inline function findRunEnd(p: usize, i: usize, c: u8): usize {
  if (i >= PAGE_SIZE) return PAGE_SIZE;
  const s = i8x16.splat(c);
  let o = i & ~(<usize>15);
  let m = ~i8x16.bitmask(i8x16.eq(v128.load(p + o), s)) & (<u32>0xffff << <u32>(i & 15)) & 0xffff;
  if (m) return o + ctz<u32>(m);
  o += 16;
  while (o < PAGE_SIZE) {
    m = ~i8x16.bitmask(i8x16.eq(v128.load(p + o), s)) & 0xffff;
    if (m) return o + ctz<u32>(m);
    o += 16;
  }
  return PAGE_SIZE;
}

@inline function putLength(p: usize, n: u32): i32 {
  if (n < 0x80) {
    store<u8>(p, <u8>n);
    return 1;
  }
  store<u8>(p, <u8>(n | 0x80));
  store<u8>(p, <u8>(n >> 7), 1);
  return 2;
}

// ---- encode ---------------------------------------------------------------------------------

/**
 * Encodes the 4 KiB page at `page` into at most `dlen` bytes at `dst`. Returns the
 * encoded length, or -1 when it would not fit. Cost: one SIMD pass over the page plus a
 * copy of the literal bytes.
 */
export function rleEncode(page: usize, dst: usize, dlen: i32): i32 {
  let i: usize = 0;
  let d: i32 = 0;
  while (i < PAGE_SIZE) {
    let c = load<u8>(page + i);
    if (i + MIN_RUN <= PAGE_SIZE && load<u64>(page + i) == <u64>c * 0x0101010101010101) {
      let e = findRunEnd(page, i + MIN_RUN, c);
      let h = (<u32>(e - i) << 1) | 1;
      if (d + (h < 0x80 ? 1 : 2) + 1 > dlen) return RLE_OVERFLOW;
      d += putLength(dst + <usize>d, h);
      store<u8>(dst + <usize>d, c);
      d += 1;
      i = e;
    } else {
      let e = findRunStart(page, i + 1);
      let n = <i32>(e - i);
      let h = <u32>n << 1;
      if (d + (h < 0x80 ? 1 : 2) + n > dlen) return RLE_OVERFLOW;
      d += putLength(dst + <usize>d, h);
      memory.copy(dst + <usize>d, page + i, <usize>n);
      d += n;
      i = e;
    }
  }
  return d;
}

/**
 * Encodes `count` pages (packed back to back) with dlen = 4096 each; encodings packed
 * back to back at `out` (count × 4096 bytes), `lengths` (i32 per page) gets -1 or the
 * encoded length. Returns the total of the positive lengths.
 */
export function rleEncodePages(pages: usize, count: u32, out: usize, lengths: usize): i32 {
  let total: i32 = 0;
  for (let p: u32 = 0; p < count; p++) {
    let r = rleEncode(pages + <usize>p * PAGE_SIZE, out + <usize>total, <i32>PAGE_SIZE);
    store<i32>(lengths + (<usize>p << 2), r);
    if (r > 0) total += r;
  }
  return total;
}

// ---- decode ----------------------------------------------------------------------------------

/** 1 when the `slen` bytes at src are a valid RLE encoding of a 4 KiB page, else 0. */
export function rleCheck(src: usize, slen: i32): i32 {
  let i: i32 = 0;
  let d: u32 = 0;
  while (i < slen) {
    if (d == <u32>PAGE_SIZE) return 0; // input goes on after the page is covered
    let b = <u32>load<u8>(src + <usize>i);
    let h: u32;
    if (b < 0x80) { h = b; i += 1; }
    else {
      if (slen - i < 2) return 0;
      let c = <u32>load<u8>(src + <usize>i, 1);
      if (c == 0 || (c & 0x80)) return 0;
      h = (b & 0x7f) | (c << 7);
      i += 2;
    }
    let n = h >> 1;
    if (n == 0 || d + n > <u32>PAGE_SIZE) return 0;
    let data = (h & 1) ? 1 : <i32>n;
    if (slen - i < data) return 0;
    i += data;
    d += n;
  }
  return d == <u32>PAGE_SIZE ? 1 : 0;
}

/** Fills exactly n bytes at dst with c (overlapping v128 stores for n ≥ 16). */
@inline function fillExact(dst: usize, c: u8, n: usize): void {
  if (n >= 16) {
    const v = i8x16.splat(c);
    let k: usize = 0;
    for (; k + 16 <= n; k += 16) v128.store(dst + k, v);
    if (k < n) v128.store(dst + n - 16, v);
  } else {
    memory.fill(dst, c, n);
  }
}

/**
 * Decodes the `slen`-byte RLE encoding at src into the 4 KiB page at dst. Returns 4096,
 * or -1 without writing anything when the input is not a valid encoding.
 */
export function rleDecode(src: usize, slen: i32, dst: usize): i32 {
  if (!rleCheck(src, slen)) return RLE_CORRUPT;
  let i: usize = 0;
  let d: usize = 0;
  while (d < PAGE_SIZE) {
    let b = <u32>load<u8>(src + i);
    let h: u32;
    if (b < 0x80) { h = b; i += 1; }
    else { h = (b & 0x7f) | (<u32>load<u8>(src + i, 1) << 7); i += 2; }
    let n = <usize>(h >> 1);
    if (h & 1) {
      fillExact(dst + d, load<u8>(src + i), n);
      i += 1;
    } else {
      memory.copy(dst + d, src + i, n);
      i += n;
    }
    d += n;
  }
  assert(d == PAGE_SIZE && i == <usize>slen, "rleDecode disagrees with rleCheck");
  return <i32>PAGE_SIZE;
}

/**
 * Decodes `count` packed encodings (page i's is lengths[i] bytes; entries ≤ 0 are
 * skipped) into the pages at `pages`. Returns the bytes consumed, or -1 - i when page
 * i's encoding is invalid (pages before it decoded, it and later ones untouched).
 */
export function rleDecodePages(src: usize, lengths: usize, pages: usize, count: u32): i32 {
  let off: usize = 0;
  for (let p: u32 = 0; p < count; p++) {
    let len = load<i32>(lengths + (<usize>p << 2));
    if (len <= 0) continue;
    if (rleDecode(src + off, len, pages + <usize>p * PAGE_SIZE) < 0) return -1 - <i32>p;
    off += <usize>len;
  }
  return <i32>off;
}

/**
 * True when at least `need` of the page's sampled aligned 8-byte words are uniform (all 8
 * bytes equal): the words of every 4th 16-byte chunk (a quarter of the page, spread over
 * all of it) are sampled. A page with fewer cannot shrink much under RLE, so the encoder
 * is not run on it. Shared with the encode pipeline kernel.
 */
@inline export function rleCandidate(page: usize, need: u32): bool {
  let n: u32 = 0;
  for (let o: usize = 0; o < PAGE_SIZE; o += 64) {
    const v = v128.load(page + o);
    const first = i8x16.shuffle(v, v, 0, 0, 0, 0, 0, 0, 0, 0, 8, 8, 8, 8, 8, 8, 8, 8);
    const m = i8x16.bitmask(i8x16.eq(v, first));
    n += <u32>((m & 0xff) == 0xff) + <u32>((m >> 8) == 0xff);
  }
  return n >= need;
}

/** Sampled uniform words rleCandidate needs for a page to have `minUniformWords` uniform words in all. */
@inline export function rleSampleNeed(minUniformWords: u32): u32 {
  return (minUniformWords + 3) >> 2;
}

/**
 * Pre-filter for the engine: for each of `count` packed pages, writes 1 (u8) at
 * out + i when at least `minUniformWords` of its aligned 8-byte words look uniform (all 8
 * bytes equal), else 0, estimated from a quarter of the page (rleCandidate); the encoder
 * makes the real decision. Returns the number of candidates.
 */
export function rleCandidates(pages: usize, count: u32, minUniformWords: u32, out: usize): u32 {
  let total: u32 = 0;
  const need = rleSampleNeed(minUniformWords);
  for (let p: u32 = 0; p < count; p++) {
    const ok: u32 = rleCandidate(pages + <usize>p * PAGE_SIZE, need) ? 1 : 0;
    store<u8>(out + <usize>p, <u8>ok);
    total += ok;
  }
  return total;
}
