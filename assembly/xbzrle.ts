// XBZRLE: Xor-Based Zero Run-Length Encoding of a page against its previous version,
// byte-compatible with QEMU.
//
//   page   = zrun nzrun | zrun nzrun page        (a trailing zrun is omitted)
//   zrun   = length                              bytes equal in old and new (0 only first)
//   nzrun  = length byte{length}                 the new bytes of a run that differs (≥ 1)
//   length = ULEB128, at most 2 bytes (14 bits): 0xxxxxxx | 1xxxxxxx 0xxxxxxx
//
// Encoder (QEMU's portable encoder, exact return values): runs are maximal; before each
// zrun and before each nzrun length the encoder needs 2 bytes of room (`d + 2 > dlen`
// → -1, even when the rest of the page turns out to be an omitted trailing zrun), and
// an nzrun's data must fit (`d + n > dlen` → -1). Returns 0 when the pages are equal.
// Nothing is written at or past dst + dlen.
//
// Decoder (QEMU's rules): fewer than 2 bytes left before a length → reject; a length
// whose second byte has bit 7 set → reject; zrun 0 anywhere but first → reject; nzrun 0
// → reject; a run past the page or an nzrun past the input → reject. Returns the offset
// just past the last nzrun (not necessarily 4096). Unlike QEMU the whole input is
// validated before the first byte is written, so a rejected input leaves the page as
// it was.
//
// see: migration/xbzrle.c (xbzrle_encode_buffer_int, xbzrle_decode_buffer),
//      util/cutils.c (uleb128_encode_small / uleb128_decode_small),
//      docs/devel/migration/xbzrle.rst
//
// SIMD: 16-byte i8x16 compares turned into bitmasks; ctz of the mask finds where a run
// ends; equal stretches are skipped 64 bytes at a time with xor/or/any_true.

import { PAGE_SIZE } from "./page";

/** Return code: the encoding does not fit in dlen (QEMU sends the page raw). */
const XBZRLE_OVERFLOW: i32 = -1;
/** Return code: the input is not a valid encoding for a 4 KiB page. */
const XBZRLE_CORRUPT: i32 = -1;

// ---- run scanning ------------------------------------------------------------------------

/** Bitmask (16 bits) of the bytes at offset o that are equal in a and b. */
@inline function eqMask(a: usize, b: usize, o: usize): u32 {
  return i8x16.bitmask(i8x16.eq(v128.load(a + o), v128.load(b + o)));
}

/** First offset ≥ i (i < PAGE_SIZE) where a and b differ, or PAGE_SIZE. */
@inline function findDiff(a: usize, b: usize, i: usize): usize {
  let o = i & ~(<usize>15);
  let m = ~eqMask(a, b, o) & (<u32>0xffff << <u32>(i & 15)) & 0xffff;
  if (m) return o + ctz<u32>(m);
  o += 16;
  // reach a 64-byte boundary 16 bytes at a time
  while ((o & 63) != 0 && o < PAGE_SIZE) {
    m = ~eqMask(a, b, o) & 0xffff;
    if (m) return o + ctz<u32>(m);
    o += 16;
  }
  // equal stretches: 64 bytes per step
  while (o < PAGE_SIZE) {
    let x0 = v128.xor(v128.load(a + o), v128.load(b + o));
    let x1 = v128.xor(v128.load(a + o, 16), v128.load(b + o, 16));
    let x2 = v128.xor(v128.load(a + o, 32), v128.load(b + o, 32));
    let x3 = v128.xor(v128.load(a + o, 48), v128.load(b + o, 48));
    if (v128.any_true(v128.or(v128.or(x0, x1), v128.or(x2, x3)))) {
      const z = i8x16.splat(0);
      let mm = <u64>i8x16.bitmask(i8x16.ne(x0, z))
        | (<u64>i8x16.bitmask(i8x16.ne(x1, z)) << 16)
        | (<u64>i8x16.bitmask(i8x16.ne(x2, z)) << 32)
        | (<u64>i8x16.bitmask(i8x16.ne(x3, z)) << 48);
      return o + <usize>ctz<u64>(mm);
    }
    o += 64;
  }
  return PAGE_SIZE;
}

/** First offset ≥ i where a and b are equal, or PAGE_SIZE (i may be PAGE_SIZE). */
@inline function findEq(a: usize, b: usize, i: usize): usize {
  if (i >= PAGE_SIZE) return PAGE_SIZE;
  let o = i & ~(<usize>15);
  let m = eqMask(a, b, o) & (<u32>0xffff << <u32>(i & 15));
  if (m) return o + ctz<u32>(m);
  o += 16;
  while ((o & 63) != 0 && o < PAGE_SIZE) {
    m = eqMask(a, b, o);
    if (m) return o + ctz<u32>(m);
    o += 16;
  }
  // differing stretches (random data): 64 bytes per step
  while (o < PAGE_SIZE) {
    let e0 = i8x16.eq(v128.load(a + o), v128.load(b + o));
    let e1 = i8x16.eq(v128.load(a + o, 16), v128.load(b + o, 16));
    let e2 = i8x16.eq(v128.load(a + o, 32), v128.load(b + o, 32));
    let e3 = i8x16.eq(v128.load(a + o, 48), v128.load(b + o, 48));
    if (v128.any_true(v128.or(v128.or(e0, e1), v128.or(e2, e3)))) {
      let mm = <u64>i8x16.bitmask(e0)
        | (<u64>i8x16.bitmask(e1) << 16)
        | (<u64>i8x16.bitmask(e2) << 32)
        | (<u64>i8x16.bitmask(e3) << 48);
      return o + <usize>ctz<u64>(mm);
    }
    o += 64;
  }
  return PAGE_SIZE;
}

// ---- helpers -------------------------------------------------------------------------------

/** Writes n (< 16384) as 1- or 2-byte ULEB128 at p; returns its size. */
@inline function putLength(p: usize, n: u32): i32 {
  if (n < 0x80) {
    store<u8>(p, <u8>n);
    return 1;
  }
  store<u8>(p, <u8>(n | 0x80));
  store<u8>(p, <u8>(n >> 7), 1);
  return 2;
}

/**
 * Copies n bytes from src to dst where `room` bytes are writable at dst and `readable`
 * bytes are readable at src: short runs with one or two v128 moves when both allow it.
 */
@inline function copyRun(dst: usize, src: usize, n: usize, room: usize, readable: usize): void {
  if (n <= 16 && room >= 16 && readable >= 16) {
    v128.store(dst, v128.load(src));
  } else if (n <= 32 && room >= 32 && readable >= 32) {
    v128.store(dst, v128.load(src));
    v128.store(dst, v128.load(src, 16), 16);
  } else {
    memory.copy(dst, src, n);
  }
}

/** Copies exactly n bytes (overlapping wide moves for short runs, no byte outside [dst, dst + n)). */
@inline function copyExact(dst: usize, src: usize, n: usize): void {
  if (n >= 16 && n <= 32) {
    let a = v128.load(src), b = v128.load(src + n - 16);
    v128.store(dst, a);
    v128.store(dst + n - 16, b);
  } else if (n >= 8 && n < 16) {
    let a = load<u64>(src), b = load<u64>(src + n - 8);
    store<u64>(dst, a);
    store<u64>(dst + n - 8, b);
  } else if (n >= 4 && n < 8) {
    let a = load<u32>(src), b = load<u32>(src + n - 4);
    store<u32>(dst, a);
    store<u32>(dst + n - 4, b);
  } else if (n < 4) {
    for (let k: usize = 0; k < n; k++) store<u8>(dst + k, load<u8>(src + k));
  } else {
    memory.copy(dst, src, n);
  }
}

// ---- encode ----------------------------------------------------------------------------------

/**
 * Encodes the 4 KiB page at `cur` against its previous version at `old` into at most
 * `dlen` bytes at `dst`. Returns the encoded length (> 0), 0 when the pages are equal, or
 * -1 when the encoding does not fit (exactly when QEMU's portable encoder does).
 * Cost: one SIMD pass over both pages plus the copy of the differing bytes.
 */
export function xbzrleEncode(old: usize, cur: usize, dst: usize, dlen: i32): i32 {
  let i: usize = 0;
  let d: i32 = 0;
  while (true) {
    if (d + 2 > dlen) return XBZRLE_OVERFLOW;
    let j = findDiff(old, cur, i);
    if (j == PAGE_SIZE) return i == 0 ? 0 : d; // equal page / omitted trailing zrun
    d += putLength(dst + <usize>d, <u32>(j - i));
    if (d + 2 > dlen) return XBZRLE_OVERFLOW;
    let k = findEq(old, cur, j + 1);
    let n = <i32>(k - j);
    d += putLength(dst + <usize>d, <u32>n);
    if (d + n > dlen) return XBZRLE_OVERFLOW;
    copyRun(dst + <usize>d, cur + j, <usize>n, <usize>(dlen - d), PAGE_SIZE - j);
    d += n;
    if (k == PAGE_SIZE) return d;
    i = k;
  }
}

/**
 * Encodes `count` page pairs (old and new pages each packed back to back) with dlen =
 * 4096 per page. Encodings are packed back to back at `out`, which must hold
 * count × 4096 bytes; `lengths` (i32 per page) receives -1, 0 or the encoded length.
 * Returns the total of the positive lengths.
 */
export function xbzrleEncodePages(old: usize, cur: usize, count: u32, out: usize, lengths: usize): i32 {
  let total: i32 = 0;
  for (let p: u32 = 0; p < count; p++) {
    let off = <usize>p * PAGE_SIZE;
    let r = xbzrleEncode(old + off, cur + off, out + <usize>total, <i32>PAGE_SIZE);
    store<i32>(lengths + (<usize>p << 2), r);
    if (r > 0) total += r;
  }
  return total;
}

// ---- decode ----------------------------------------------------------------------------------

/**
 * Checks that `slen` bytes at src are an encoding QEMU's decoder accepts for a 4 KiB page;
 * returns the end offset it would return, or -1.
 */
export function xbzrleCheck(src: usize, slen: i32): i32 {
  let i: i32 = 0;
  let d: i32 = 0;
  while (i < slen) {
    // zrun length
    if (slen - i < 2) return XBZRLE_CORRUPT;
    let b = <u32>load<u8>(src + <usize>i);
    let n: u32;
    let at = i;
    if (b < 0x80) { n = b; i += 1; }
    else {
      let c = <u32>load<u8>(src + <usize>i, 1);
      if (c & 0x80) return XBZRLE_CORRUPT;
      n = (b & 0x7f) | (c << 7);
      i += 2;
    }
    if (at != 0 && n == 0) return XBZRLE_CORRUPT;
    d += <i32>n;
    if (d > <i32>PAGE_SIZE) return XBZRLE_CORRUPT;
    // nzrun length and data
    if (slen - i < 2) return XBZRLE_CORRUPT;
    b = <u32>load<u8>(src + <usize>i);
    if (b < 0x80) { n = b; i += 1; }
    else {
      let c = <u32>load<u8>(src + <usize>i, 1);
      if (c & 0x80) return XBZRLE_CORRUPT;
      n = (b & 0x7f) | (c << 7);
      i += 2;
    }
    if (n == 0) return XBZRLE_CORRUPT;
    if (d + <i32>n > <i32>PAGE_SIZE || i + <i32>n > slen) return XBZRLE_CORRUPT;
    d += <i32>n;
    i += <i32>n;
  }
  return d;
}

/** Reads a length already validated by xbzrleCheck. */
@inline function getLength(p: usize): u32 {
  let b = <u32>load<u8>(p);
  return b < 0x80 ? b : (b & 0x7f) | (<u32>load<u8>(p, 1) << 7);
}

/**
 * Applies the `slen`-byte encoding at src to the 4 KiB page at dst. Returns the offset
 * after the last nzrun (as QEMU does), or -1 without writing anything when the input is
 * not valid. Cost: one pass over the run lengths, then one copy of each nzrun.
 */
export function xbzrleDecode(src: usize, slen: i32, dst: usize): i32 {
  const end = xbzrleCheck(src, slen);
  if (end < 0) return end;
  let i: usize = 0;
  let d: usize = 0;
  const s = <usize>slen;
  while (i < s) {
    // a 2-byte length may hold a small value (not canonical, accepted as QEMU does)
    let z = getLength(src + i);
    i += <usize>(load<u8>(src + i) >> 7) + 1;
    d += z;
    let n = getLength(src + i);
    i += <usize>(load<u8>(src + i) >> 7) + 1;
    copyExact(dst + d, src + i, <usize>n);
    d += n;
    i += n;
  }
  return end;
}

/**
 * Decodes `count` packed encodings (page i's length is lengths[i], i32; 0 and negative
 * lengths are skipped: unchanged or sent raw) into the pages at `pages` (4 KiB each).
 * Returns the number of encoded bytes consumed, or -1 - i when page i's encoding is
 * invalid (pages before i are decoded, page i and later are untouched).
 */
export function xbzrleDecodePages(src: usize, lengths: usize, pages: usize, count: u32): i32 {
  let off: usize = 0;
  for (let p: u32 = 0; p < count; p++) {
    let len = load<i32>(lengths + (<usize>p << 2));
    if (len <= 0) continue;
    if (xbzrleDecode(src + off, len, pages + <usize>p * PAGE_SIZE) < 0) return -1 - <i32>p;
    off += <usize>len;
  }
  return <i32>off;
}
