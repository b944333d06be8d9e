// LZ: a page-local LZ77 codec (LZ4-block-like: literal runs and back-references inside
// the page) for the first copy of a page with real content (kernel text, binaries, page
// cache), which no delta or run-length codec can shrink.
//
//   page    = seq+                          decoding stops when the 4096 bytes are covered;
//                                           the input must end exactly there
//   seq     = token lext? byte{L} match?
//   token   = u8: L4 << 4 | M4
//   L       = L4, or 15 + ext when L4 == 15 (literal bytes, copied as they are)
//   match   = dist:u16 mext?                present exactly when the literals leave the page
//                                           uncovered; a seq without one has M4 == 0
//   M       = M4 + 4, or 19 + ext when M4 == 15: copy M bytes from dist bytes back,
//             1 ≤ dist ≤ bytes written so far (dist < M repeats the last dist bytes)
//   ext     = ULEB128 in 1 or 2 bytes: 0xxxxxxx | 1xxxxxxx 0xxxxxxx, canonical (a 2-byte
//             ext has a non-zero second byte); every length ≤ 4096 fits
//
// Worst case: under 4128 bytes (a seq with 143+ literals and a 4-byte match costs one byte
// more than it covers; at most 27 of them fit in a page, plus 3 for the last seq). The
// encoder is given a budget (dlen), in the pipeline well under a page: pages that do not
// fit go raw.
//
// Encoder (greedy, deterministic): a 4096-entry table of u16 positions indexed by a
// multiplicative hash of 4 bytes, cleared per page; at each position the candidate is
// verified (4 bytes equal), extended forward 8 bytes at a time and backward over pending
// literals. Consecutive misses lengthen the step (1 + misses / 32) so incompressible
// input is skimmed, not scanned. It gives up (-1) as soon as the output exceeds dlen, or
// once a quarter of the page is scanned and the output so far, extrapolated to the
// page, would exceed 9/8 × dlen: a random page costs a quarter-page skim. dlen changes
// only where it stops, never the bytes it writes. The encode pipeline skips even that
// on pages without two equal samples (lzCandidate).
//
// Decoder: a check pass walks the tokens (no data copied) and rejects a truncated token,
// ext, literal run or dist; a non-canonical ext; dist 0 or before the page start;
// literals or a match past the page end; a last seq with M4 ≠ 0; bytes after the page is
// covered. Only then is the page written, so a rejected input leaves it as it was and
// nothing outside it is ever written. Copies are 16 bytes wide (wider than the run when
// the page has room: later bytes overwrite the excess); a match closer than 16 bytes is
// widened to a multiple of its distance ≥ 16 once that many bytes are out.
//
// see: Ziv & Lempel, "A Universal Algorithm for Sequential Data Compression" (1977);
//      the LZ4 block format description (token nibbles, skip acceleration) for the idea.

import { LZ_CORRUPT, LZ_OVERFLOW, LZ_TABLE_BYTES, PAGE_SIZE } from "./abi";

const MIN_MATCH: usize = 4;
const HASH_SHIFT: u32 = 20; // 32 - log2(LZ_TABLE_BYTES / 2)
/** Misses before the step grows by one byte. */
const SKIP_SHIFT: u32 = 5;
/** Scanned bytes after which the encoder may give up on a page that will not fit. */
const GIVE_UP_FROM: usize = PAGE_SIZE >> 2;
/** The last position a match may start at (it reads 4 bytes). */
const LAST_MATCH: usize = PAGE_SIZE - MIN_MATCH;

@inline function hashSlot(table: usize, v: u32): usize {
  return table + (<usize>((v * 2654435761) >> HASH_SHIFT) << 1);
}

@inline function extBytes(v: usize): usize {
  return v < 0x80 ? 1 : 2;
}

@inline function putExt(p: usize, v: usize): usize {
  if (v < 0x80) {
    store<u8>(p, <u8>v);
    return 1;
  }
  store<u8>(p, <u8>(v | 0x80));
  store<u8>(p, <u8>(v >> 7), 1);
  return 2;
}

/** Copies n bytes: 16 at a time when the source and destination have that much room, else exactly. */
@inline function copyLiterals(dst: usize, src: usize, n: usize, wide: bool): void {
  if (wide) {
    let k: usize = 0;
    do {
      v128.store(dst + k, v128.load(src + k));
      k += 16;
    } while (k < n);
  } else memory.copy(dst, src, n);
}

// ---- encode ---------------------------------------------------------------------------------

/**
 * LZ-encodes the 4 KiB page at `page` into at most `dlen` bytes at `dst`, using `table`
 * (LZ_TABLE_BYTES of the caller's scratch, overwritten). Returns the encoded length, or
 * LZ_OVERFLOW when it would not fit (or, from a quarter of the page on, would not fit at
 * the rate so far). Cost: a skim of the page for matches plus the copy of its literals.
 */
export function lzEncode(page: usize, dst: usize, dlen: i32, table: usize): i32 {
  if (dlen <= 0) return LZ_OVERFLOW;
  const limit = <usize>dlen;
  memory.fill(table, 0, LZ_TABLE_BYTES);
  let d: usize = 0;
  let anchor: usize = 0;
  let i: usize = 1;
  let misses: u32 = 0;
  while (i <= LAST_MATCH) {
    const v = load<u32>(page + i);
    const slot = hashSlot(table, v);
    const c = <usize>load<u16>(slot);
    store<u16>(slot, <u16>i);
    if (load<u32>(page + c) != v) {
      // c < i always (the table holds earlier positions, or 0): a miss
      misses++;
      i += 1 + <usize>(misses >> SKIP_SHIFT);
      // 1/8 of slack: a page whose matches come late still gets its chance under a tight budget
      if (i >= GIVE_UP_FROM && (d + i - anchor) * (PAGE_SIZE * 8) > limit * i * 9) return LZ_OVERFLOW;
      continue;
    }
    // forward: 8 bytes at a time while both stay inside the page (c < i: c's side does)
    let e = i + MIN_MATCH;
    let f = c + MIN_MATCH;
    let open = true;
    while (e + 8 <= PAGE_SIZE) {
      const x = load<u64>(page + e) ^ load<u64>(page + f);
      if (x) {
        e += <usize>(ctz<u64>(x) >> 3);
        open = false;
        break;
      }
      e += 8;
      f += 8;
    }
    if (open) while (e < PAGE_SIZE && load<u8>(page + e) == load<u8>(page + f)) { e++; f++; }
    // backward over the pending literals
    let b = i;
    let s = c;
    while (b > anchor && s > 0 && load<u8>(page + b - 1) == load<u8>(page + s - 1)) { b--; s--; }

    const lits = b - anchor;
    const m = e - b;
    const need: usize = 1 + (lits >= 15 ? extBytes(lits - 15) : <usize>0) + lits + 2 + (m >= 19 ? extBytes(m - 19) : <usize>0);
    if (d + need > limit) return LZ_OVERFLOW;
    const tok = dst + d;
    d += 1;
    let t = (lits >= 15 ? 15 : <u32>lits) << 4;
    if (lits >= 15) d += putExt(dst + d, lits - 15);
    if (lits) {
      // wide when the output has room for the over-copy and the read stays in the page
      const w = (lits + 15) & ~15;
      copyLiterals(dst + d, page + anchor, lits, d + w <= limit && anchor + w <= PAGE_SIZE);
      d += lits;
    }
    store<u16>(dst + d, <u16>(i - c));
    d += 2;
    if (m >= 19) {
      t |= 15;
      d += putExt(dst + d, m - 19);
    } else t |= <u32>(m - MIN_MATCH);
    store<u8>(tok, <u8>t);

    anchor = e;
    // a position near the match end seeds the next search (the match's inside is not hashed)
    if (e - 2 <= LAST_MATCH) store<u16>(hashSlot(table, load<u32>(page + e - 2)), <u16>(e - 2));
    i = e;
    misses = 0;
  }
  if (anchor < PAGE_SIZE) {
    // the last seq: literals up to the page end, M4 = 0
    const lits = PAGE_SIZE - anchor;
    if (d + 1 + (lits >= 15 ? extBytes(lits - 15) : <usize>0) + lits > limit) return LZ_OVERFLOW;
    store<u8>(dst + d, <u8>((lits >= 15 ? 15 : <u32>lits) << 4));
    d += 1;
    if (lits >= 15) d += putExt(dst + d, lits - 15);
    memory.copy(dst + d, page + anchor, lits);
    d += lits;
  }
  return <i32>d;
}

/** lzCandidate samples one aligned u32 every SAMPLE_STRIDE bytes (32 per page). */
const SAMPLE_STRIDE: usize = 128;

/**
 * True when two of the page's 32 aligned 4-byte samples (one every 128 bytes) are equal:
 * a page without one is seldom worth encoding (on the recordings such pages hold ~4% of
 * what LZ saves; one sample every 64 bytes would keep 1.5% more at twice the cost), and a
 * random page has one with probability ~1e-7. Costs a 512-byte clear and 32 probes of a
 * 128-entry u32 table at `table` (the LZ table's first 512 bytes, overwritten): a few
 * percent of the pipeline's time per page. Shared with the encode pipeline kernel.
 */
@inline export function lzCandidate(page: usize, table: usize): bool {
  // entries hold ~value (0: empty); a sample of 0xffffffff on an empty entry is a false
  // positive, which only costs an encoder run
  const zero = i32x4.splat(0);
  for (let o: usize = 0; o < 512; o += 64) {
    v128.store(table + o, zero);
    v128.store(table + o, zero, 16);
    v128.store(table + o, zero, 32);
    v128.store(table + o, zero, 48);
  }
  for (let o: usize = 0; o < PAGE_SIZE; o += SAMPLE_STRIDE) {
    const v = ~load<u32>(page + o);
    const slot = table + (<usize>((v * 2654435761) >> 25) << 2);
    if (load<u32>(slot) == v) return true;
    store<u32>(slot, v);
  }
  return false;
}

// ---- decode ----------------------------------------------------------------------------------

/** The ext at src + i: its value | its byte count << 16, or -1 when truncated or not canonical. */
@inline function readExt(src: usize, i: i32, slen: i32): i32 {
  if (i >= slen) return -1;
  const b = <i32>load<u8>(src + <usize>i);
  if (b < 0x80) return b | (1 << 16);
  if (slen - i < 2) return -1;
  const c = <i32>load<u8>(src + <usize>i, 1);
  if (c == 0 || c >= 0x80) return -1;
  return (b & 0x7f) | (c << 7) | (2 << 16);
}

/** 1 when the `slen` bytes at src are a valid LZ encoding of a 4 KiB page, else 0. Reads nothing outside them. */
export function lzCheck(src: usize, slen: i32): i32 {
  let i: i32 = 0;
  let d: i32 = 0;
  const P = <i32>PAGE_SIZE;
  while (true) {
    if (i >= slen) return 0; // a token is missing
    const t = <i32>load<u8>(src + <usize>i);
    i += 1;
    let lits = t >> 4;
    if (lits == 15) {
      const x = readExt(src, i, slen);
      if (x < 0) return 0;
      i += x >> 16;
      lits += x & 0xffff;
    }
    if (lits > P - d || lits > slen - i) return 0;
    i += lits;
    d += lits;
    if (d == P) return (t & 15) == 0 && i == slen ? 1 : 0;
    if (slen - i < 2) return 0;
    const dist = <i32>load<u16>(src + <usize>i);
    i += 2;
    if (dist == 0 || dist > d) return 0;
    let m = (t & 15) + <i32>MIN_MATCH;
    if ((t & 15) == 15) {
      const x = readExt(src, i, slen);
      if (x < 0) return 0;
      i += x >> 16;
      m += x & 0xffff;
    }
    if (m > P - d) return 0;
    d += m;
    if (d == P) return i == slen ? 1 : 0;
  }
}

/** Copies an m-byte match from `dist` bytes back to dst (room: bytes of the page from dst on). */
@inline function copyMatch(dst: usize, dist: usize, m: usize, room: usize): void {
  let from = dst - dist;
  if (dist < 16) {
    // bytes one by one until the repeat can be read 16 at a time from a distance ≥ 16
    const wide = dist * ((16 + dist - 1) / dist);
    const head = m < wide ? m : wide;
    for (let k: usize = 0; k < head; k++) store<u8>(dst + k, load<u8>(from + k));
    if (head == m) return;
    from = dst + head - wide;
    dst += head;
    m -= head;
    room -= head;
  }
  if (((m + 15) & ~15) <= room) {
    let k: usize = 0;
    do {
      v128.store(dst + k, v128.load(from + k));
      k += 16;
    } while (k < m);
  } else {
    // near the page end: exact, in 16-byte steps that never overlap (distance ≥ 16)
    let k: usize = 0;
    for (; k + 16 <= m; k += 16) v128.store(dst + k, v128.load(from + k));
    for (; k < m; k++) store<u8>(dst + k, load<u8>(from + k));
  }
}

/**
 * Decodes the `slen`-byte LZ encoding at src into the 4 KiB page at dst. Returns 4096, or
 * LZ_CORRUPT without writing anything when the input is not a valid encoding.
 * Cost: the check pass over the tokens, then one pass writing the page.
 */
export function lzDecode(src: usize, slen: i32, dst: usize): i32 {
  if (!lzCheck(src, slen)) return LZ_CORRUPT;
  const end = <usize>slen;
  let i: usize = 0;
  let d: usize = 0;
  while (true) {
    const t = <u32>load<u8>(src + i);
    i += 1;
    let lits = <usize>(t >> 4);
    if (lits == 15) {
      const b = <usize>load<u8>(src + i);
      if (b < 0x80) { lits += b; i += 1; }
      else { lits += (b & 0x7f) | (<usize>load<u8>(src + i, 1) << 7); i += 2; }
    }
    if (lits) {
      const w = (lits + 15) & ~15;
      copyLiterals(dst + d, src + i, lits, d + w <= PAGE_SIZE && i + w <= end);
      i += lits;
      d += lits;
    }
    if (d == PAGE_SIZE) break;
    const dist = <usize>load<u16>(src + i);
    i += 2;
    let m = <usize>(t & 15) + MIN_MATCH;
    if ((t & 15) == 15) {
      const b = <usize>load<u8>(src + i);
      if (b < 0x80) { m += b; i += 1; }
      else { m += (b & 0x7f) | (<usize>load<u8>(src + i, 1) << 7); i += 2; }
    }
    copyMatch(dst + d, dist, m, PAGE_SIZE - d);
    d += m;
    if (d == PAGE_SIZE) break;
  }
  assert(i == end, "lzDecode disagrees with lzCheck");
  return <i32>PAGE_SIZE;
}
