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
// SIMD: the page is walked 64 bytes at a time (equal stretches 128 at a time); equal
// blocks (inside a zrun) and all-different blocks (inside an nzrun) are skipped with one
// any_true; otherwise four
// i8x16 compares become a 64-bit mask of differing bytes and every run end in the block
// is found with ctz, without reloading. Almost all-different first 16 bytes trigger a
// popcount bound of the encoded size, so random pages are rejected (-1) in one pass.

import { PAGE_SIZE, XBZRLE_CORRUPT, XBZRLE_OVERFLOW } from "./abi";

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

/** 64-bit mask of the bytes of the 64-byte block at o that differ between a and b. */
@inline function diffMask64(a: usize, b: usize, o: usize): u64 {
  return ~(<u64><u32>i8x16.bitmask(i8x16.eq(v128.load(a + o), v128.load(b + o)))
    | (<u64><u32>i8x16.bitmask(i8x16.eq(v128.load(a + o, 16), v128.load(b + o, 16))) << 16)
    | (<u64><u32>i8x16.bitmask(i8x16.eq(v128.load(a + o, 32), v128.load(b + o, 32))) << 32)
    | (<u64><u32>i8x16.bitmask(i8x16.eq(v128.load(a + o, 48), v128.load(b + o, 48))) << 48));
}

/** True when the 64-byte blocks at a + o and b + o are equal. */
@inline function blockEqual(a: usize, b: usize, o: usize): bool {
  return !v128.any_true(v128.or(
    v128.or(v128.xor(v128.load(a + o), v128.load(b + o)), v128.xor(v128.load(a + o, 16), v128.load(b + o, 16))),
    v128.or(v128.xor(v128.load(a + o, 32), v128.load(b + o, 32)), v128.xor(v128.load(a + o, 48), v128.load(b + o, 48))),
  ));
}

/** True when the 128-byte blocks at a + o and b + o are equal. */
@inline function pairEqual(a: usize, b: usize, o: usize): bool {
  let x = v128.or(
    v128.or(v128.xor(v128.load(a + o), v128.load(b + o)), v128.xor(v128.load(a + o, 16), v128.load(b + o, 16))),
    v128.or(v128.xor(v128.load(a + o, 32), v128.load(b + o, 32)), v128.xor(v128.load(a + o, 48), v128.load(b + o, 48))),
  );
  let y = v128.or(
    v128.or(v128.xor(v128.load(a + o, 64), v128.load(b + o, 64)), v128.xor(v128.load(a + o, 80), v128.load(b + o, 80))),
    v128.or(v128.xor(v128.load(a + o, 96), v128.load(b + o, 96)), v128.xor(v128.load(a + o, 112), v128.load(b + o, 112))),
  );
  return !v128.any_true(v128.or(x, y));
}

/** True when no byte of the 64-byte blocks at a + o and b + o is equal. */
@inline function blockDisjoint(a: usize, b: usize, o: usize): bool {
  return !v128.any_true(v128.or(
    v128.or(i8x16.eq(v128.load(a + o), v128.load(b + o)), i8x16.eq(v128.load(a + o, 16), v128.load(b + o, 16))),
    v128.or(i8x16.eq(v128.load(a + o, 32), v128.load(b + o, 32)), i8x16.eq(v128.load(a + o, 48), v128.load(b + o, 48))),
  ));
}

/**
 * A lower bound of the encoded size: differing bytes + 2 per differing run (each nzrun
 * has a length and follows a zrun length). Above dlen, the encoder must return -1.
 */
function encodedSizeBound(old: usize, cur: usize): i32 {
  let bytes: u64 = 0, runs: u64 = 0, carry: u64 = 0;
  for (let o: usize = 0; o < PAGE_SIZE; o += 64) {
    let m = diffMask64(old, cur, o);
    bytes += popcnt<u64>(m);
    runs += popcnt<u64>(m & ~((m << 1) | carry));
    carry = m >> 63;
  }
  return <i32>(bytes + 2 * runs);
}

/**
 * Encodes the 4 KiB page at `cur` against its previous version at `old` into at most
 * `dlen` bytes at `dst`. Returns the encoded length (> 0), 0 when the pages are equal, or
 * -1 when the encoding does not fit (exactly when QEMU's portable encoder does).
 * Cost: one SIMD pass over both pages (64 bytes per step; equal and all-different blocks
 * skip the mask) plus the copy of the differing bytes; a page that cannot fit (random
 * data) is rejected after one mask pass, without copying.
 */
export function xbzrleEncode(old: usize, cur: usize, dst: usize, dlen: i32): i32 {
  if (dlen < 2) return XBZRLE_OVERFLOW; // QEMU checks room before looking at the page
  // first 16 bytes almost all different suggest random data: bound the size first
  if (popcnt<u32>(i8x16.bitmask(i8x16.eq(v128.load(old), v128.load(cur)))) <= 2 && encodedSizeBound(old, cur) > dlen) return XBZRLE_OVERFLOW;
  let d: i32 = 0;
  let start: usize = 0; // first byte of the current run
  let inZrun = true;
  for (let o: usize = 0; o < PAGE_SIZE; o += 64) {
    if (inZrun) {
      // equal stretches: 128 bytes per step once aligned, then 64
      if ((o & 127) == 0) {
        while (o < PAGE_SIZE && pairEqual(old, cur, o)) o += 128;
        if (o >= PAGE_SIZE) break;
      }
      if (blockEqual(old, cur, o)) continue;
    } else if (blockDisjoint(old, cur, o)) continue;
    let m = diffMask64(old, cur, o);
    let from: u64 = <u64>-1; // bits at or after the current position
    while (true) {
      if (inZrun) {
        let t = m & from;
        if (!t) break;
        let b = ctz<u64>(t);
        let j = o + <usize>b;
        d += putLength(dst + <usize>d, <u32>(j - start)); // zrun
        if (d + 2 > dlen) return XBZRLE_OVERFLOW;
        start = j;
        inZrun = false;
        from = <u64>-1 << b;
      } else {
        let t = ~m & from;
        if (!t) break;
        let b = ctz<u64>(t);
        let k = o + <usize>b;
        let n = <i32>(k - start);
        d += putLength(dst + <usize>d, <u32>n); // nzrun
        if (d + n > dlen) return XBZRLE_OVERFLOW;
        copyRun(dst + <usize>d, cur + start, <usize>n, <usize>(dlen - d), PAGE_SIZE - start);
        d += n;
        if (d + 2 > dlen) return XBZRLE_OVERFLOW; // room for the next zrun (QEMU's loop top)
        start = k;
        inZrun = true;
        from = <u64>-1 << b;
      }
    }
  }
  if (inZrun) return start == 0 ? 0 : d; // equal pages / omitted trailing zrun
  let n = <i32>(PAGE_SIZE - start); // an nzrun reaching the page end
  d += putLength(dst + <usize>d, <u32>n);
  if (d + n > dlen) return XBZRLE_OVERFLOW;
  copyRun(dst + <usize>d, cur + start, <usize>n, <usize>(dlen - d), PAGE_SIZE - start);
  return d + n;
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
  assert(d == <usize>end, "xbzrleDecode disagrees with xbzrleCheck");
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
