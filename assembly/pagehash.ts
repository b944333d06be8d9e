// Page hashing: XXH3-64 and XXH3-128 (xxHash 0.8 family), seedable, bit-compatible with
// the reference implementation on any input length.
//
// see: xxHash's xxhash.h (XXH3_64bits_withSeed, XXH3_128bits_withSeed, XXH3_hashLong_*,
// XXH3_accumulate_512_sse2, XXH3_scrambleAcc_sse2, XXH3_initCustomSecret).
//
// Structure of XXH3 on an input of `len` bytes:
//   len 0..16      a few multiplies over the first/last words (scalar, below)
//   len 17..128    up to 8 16-byte mixes from both ends
//   len 129..240   16-byte mixes in rounds, avalanche in the middle
//   len > 240      "long": 8 u64 accumulators, 64-byte stripes consuming the secret 8 bytes
//                  at a time; every 16 stripes (1 KiB, one block) the accumulators are
//                  scrambled; a last stripe ends exactly at the input end; the 8 lanes are
//                  merged into 64 (or 2×64) bits.
// A 4 KiB page is a long input: 3 blocks + 15 stripes + the last stripe. The long loop is
// the hot path and runs on v128: two u64 accumulator lanes per vector; the 32×32→64
// multiply of each lane's low and high halves (SSE2: _mm_mul_epu32) is done for two
// vectors at once with two shuffles, one i64x2.extmul_low_i32x4_u and one _high; the
// "acc[i^1] += data[i]" term is summed unswapped and swapped once per call.
//
// A seed other than 0 changes the secret used by the long path (kSecret lanes ± seed);
// it is derived on each call that needs it into the instance's scratch (below), which
// also holds the accumulators between blocks: one kernel instance hashes on one thread
// at a time, and instances sharing one memory each point `scratch` at their own region.

import { HASH_BAD_BITS, PAGE_SIZE } from "./abi";

// ---- constants -------------------------------------------------------------------------

const PRIME32_1: u64 = 0x9e3779b1;
const PRIME32_2: u64 = 0x85ebca77;
const PRIME32_3: u64 = 0xc2b2ae3d;
const PRIME64_1: u64 = 0x9e3779b185ebca87;
const PRIME64_2: u64 = 0xc2b2ae3d27d4eb4f;
const PRIME64_3: u64 = 0x165667b19e3779f9;
const PRIME64_4: u64 = 0x85ebca77c2b2ae63;
const PRIME64_5: u64 = 0x27d4eb2f165667c5;
const PRIME_MX1: u64 = 0x165667919e3779f9;
const PRIME_MX2: u64 = 0x9fb21c651e98df25;

const SECRET_SIZE: usize = 192;
const SECRET_SIZE_MIN: usize = 136;
const STRIPE_LEN: usize = 64;
const STRIPES_PER_BLOCK: usize = (SECRET_SIZE - STRIPE_LEN) / 8; // 16
const BLOCK_LEN: usize = STRIPE_LEN * STRIPES_PER_BLOCK; // 1024
const LASTACC_START: usize = 7;
const MERGEACCS_START: usize = 11;
const MIDSIZE_STARTOFFSET: usize = 3;
const MIDSIZE_LASTOFFSET: usize = 17;

// The default secret (XXH3_kSecret), 192 bytes.
const K_SECRET: usize = memory.data<u8>([
  0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
  0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
  0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
  0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
  0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
  0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
  0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
  0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
  0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
  0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
  0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
  0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
], 16);

// ---- per-instance scratch ----------------------------------------------------------------
//
// HASH_SCRATCH_BYTES (abi.ts) of scratch: the 8 u64 accumulators (bytes 0..63, read by the
// merge), the secret derived from a non-zero seed (bytes 64..255, XXH3_initCustomSecret),
// then two 16-byte hash slots for callers (scratchHash, scratchZeroHash: 256..287).
// By default it is the area right after the static data, which heapBase() (heap.ts) keeps
// out of the TS heap. It is deliberately not `memory.data`: that would be an active data
// segment of zeros, re-applied by every instantiation, so a second instance importing the
// same shared memory would zero the first one's scratch under a running hash. The only
// data segment left in this file is K_SECRET, whose bytes every instantiation rewrites
// identically (harmless: a concurrent reader sees the same bytes). A kernel instance on an
// arena of another kernel's memory calls setScratch on a region of its own heap.
const SCRATCH_SECRET: usize = 64;
const SCRATCH_HASH: usize = 256;
const SCRATCH_ZERO_HASH: usize = 272;

/**
 * Where this instance's scratch is (a wasm global: one per instance). Its initializer is
 * the module's only start-function work: it sets this global and writes no memory.
 */
let scratch: usize = (__heap_base + 15) & ~15;

/**
 * Points this instance's hashing scratch at `ptr`: HASH_SCRATCH_BYTES, 16-byte aligned,
 * used by no other instance. Call it once after instantiation, before any hash, on every
 * instance that shares its memory with another instance (each on a region of its own).
 */
export function setScratch(ptr: usize): void {
  assert((ptr & 15) == 0, "hash scratch not 16-byte aligned");
  scratch = ptr;
}

/** 16 bytes of this instance's scratch for a page's XXH3-128 (a caller's, between hashes). */
@inline export function scratchHash(): usize {
  return scratch + SCRATCH_HASH;
}

/** 16 bytes of this instance's scratch for the zero page's XXH3-128. */
@inline export function scratchZeroHash(): usize {
  return scratch + SCRATCH_ZERO_HASH;
}

/** This instance's hashing scratch (the default: the area after the static data). */
export function getScratch(): usize {
  return scratch;
}

// ---- scalar helpers --------------------------------------------------------------------

/** High 64 bits of the last mul128 (a second return value). */
let mulHigh: u64 = 0;

/** 64×64→128 multiply; returns the low half, leaves the high half in mulHigh. */
@inline function mul128(a: u64, b: u64): u64 {
  const aLo = a & 0xffffffff, aHi = a >> 32, bLo = b & 0xffffffff, bHi = b >> 32;
  const loLo = aLo * bLo;
  const hiLo = aHi * bLo;
  const loHi = aLo * bHi;
  const hiHi = aHi * bHi;
  const cross = (loLo >> 32) + (hiLo & 0xffffffff) + loHi;
  mulHigh = (hiLo >> 32) + (cross >> 32) + hiHi;
  return (cross << 32) | (loLo & 0xffffffff);
}

@inline function mulFold64(a: u64, b: u64): u64 {
  const lo = mul128(a, b);
  return lo ^ mulHigh;
}

@inline function avalanche(h: u64): u64 {
  h ^= h >> 37;
  h *= PRIME_MX1;
  return h ^ (h >> 32);
}

@inline function avalancheXxh64(h: u64): u64 {
  h ^= h >> 33;
  h *= PRIME64_2;
  h ^= h >> 29;
  h *= PRIME64_3;
  return h ^ (h >> 32);
}

@inline function rrmxmx(h: u64, len: u64): u64 {
  h ^= rotl<u64>(h, 49) ^ rotl<u64>(h, 24);
  h *= PRIME_MX2;
  h ^= (h >> 35) + len;
  h *= PRIME_MX2;
  return h ^ (h >> 28);
}

@inline function mix16(input: usize, secret: usize, seed: u64): u64 {
  return mulFold64(load<u64>(input) ^ (load<u64>(secret) + seed), load<u64>(input, 8) ^ (load<u64>(secret, 8) - seed));
}

// ---- long inputs (> 240 bytes): the SIMD accumulate loop --------------------------------

/** XXH3_scrambleAcc on one lane: acc ^= acc >> 47; acc ^= key; acc *= PRIME32_1. */
@inline function scrambleLane(acc: v128, k: usize): v128 {
  acc = v128.xor(v128.xor(acc, i64x2.shr_u(acc, 47)), v128.load(k));
  return i64x2.mul(acc, i64x2.splat(PRIME32_1));
}

/**
 * `n` stripes of XXH3_accumulate (64 bytes of input at p + 64 s, secret at k + 8 s) on
 * the accumulators in the scratch. Lanes are paired: the low and high u32 halves of two
 * lanes are gathered with one shuffle each, and one extmul_low plus one extmul_high give
 * the four 32×32→64 products (the SSE2 path's _mm_mul_epu32, two lanes at a time).
 */
function accumulateStripes(p: usize, k: usize, n: usize): void {
  const acc = scratch;
  let a0 = v128.load(acc), a1 = v128.load(acc, 16), a2 = v128.load(acc, 32), a3 = v128.load(acc, 48);
  // acc[i ^ 1] += data[i] is summed unswapped here and swapped once at the end (addition
  // commutes with the lane swap): saves one shuffle per lane per stripe
  let s0 = i64x2.splat(0), s1 = i64x2.splat(0), s2 = i64x2.splat(0), s3 = i64x2.splat(0);
  const end = p + n * STRIPE_LEN;
  while (p < end) {
    const d0 = v128.load(p), d1 = v128.load(p, 16), d2 = v128.load(p, 32), d3 = v128.load(p, 48);
    const k0 = v128.xor(d0, v128.load(k)), k1 = v128.xor(d1, v128.load(k, 16));
    const k2 = v128.xor(d2, v128.load(k, 32)), k3 = v128.xor(d3, v128.load(k, 48));
    const lo01 = v128.shuffle<i32>(k0, k1, 0, 2, 4, 6), hi01 = v128.shuffle<i32>(k0, k1, 1, 3, 5, 7);
    const lo23 = v128.shuffle<i32>(k2, k3, 0, 2, 4, 6), hi23 = v128.shuffle<i32>(k2, k3, 1, 3, 5, 7);
    s0 = i64x2.add(s0, d0);
    s1 = i64x2.add(s1, d1);
    s2 = i64x2.add(s2, d2);
    s3 = i64x2.add(s3, d3);
    a0 = i64x2.add(a0, i64x2.extmul_low_i32x4_u(lo01, hi01));
    a1 = i64x2.add(a1, i64x2.extmul_high_i32x4_u(lo01, hi01));
    a2 = i64x2.add(a2, i64x2.extmul_low_i32x4_u(lo23, hi23));
    a3 = i64x2.add(a3, i64x2.extmul_high_i32x4_u(lo23, hi23));
    p += STRIPE_LEN;
    k += 8;
  }
  v128.store(acc, i64x2.add(a0, v128.shuffle<i64>(s0, s0, 1, 0)));
  v128.store(acc, i64x2.add(a1, v128.shuffle<i64>(s1, s1, 1, 0)), 16);
  v128.store(acc, i64x2.add(a2, v128.shuffle<i64>(s2, s2, 1, 0)), 32);
  v128.store(acc, i64x2.add(a3, v128.shuffle<i64>(s3, s3, 1, 0)), 48);
}

/** XXH3_scrambleAcc on the accumulators in the scratch with the key at k. */
function scrambleAccs(k: usize): void {
  const acc = scratch;
  v128.store(acc, scrambleLane(v128.load(acc), k));
  v128.store(acc, scrambleLane(v128.load(acc, 16), k + 16), 16);
  v128.store(acc, scrambleLane(v128.load(acc, 32), k + 32), 32);
  v128.store(acc, scrambleLane(v128.load(acc, 48), k + 48), 48);
}

/** Runs the long-input loop over `len` (> 240) bytes and leaves the accumulators in the scratch. */
function accumulateLong(input: usize, len: usize, secret: usize): void {
  const acc = scratch;
  v128.store(acc, i64x2.replace_lane(i64x2.splat(PRIME32_3), 1, PRIME64_1));
  v128.store(acc, i64x2.replace_lane(i64x2.splat(PRIME64_2), 1, PRIME64_3), 16);
  v128.store(acc, i64x2.replace_lane(i64x2.splat(PRIME64_4), 1, PRIME32_2), 32);
  v128.store(acc, i64x2.replace_lane(i64x2.splat(PRIME64_5), 1, PRIME32_1), 48);
  const blocks = (len - 1) / BLOCK_LEN;
  for (let b: usize = 0; b < blocks; b++) {
    accumulateStripes(input + b * BLOCK_LEN, secret, STRIPES_PER_BLOCK);
    scrambleAccs(secret + SECRET_SIZE - STRIPE_LEN);
  }
  // the last partial block, then the last stripe (ending exactly at the input end)
  accumulateStripes(input + blocks * BLOCK_LEN, secret, ((len - 1) - blocks * BLOCK_LEN) / STRIPE_LEN);
  accumulateStripes(input + len - STRIPE_LEN, secret + SECRET_SIZE - STRIPE_LEN - LASTACC_START, 1);
}

/** XXH3_mergeAccs over the accumulators in the scratch. */
@inline function mergeAccs(secret: usize, start: u64): u64 {
  const acc = scratch;
  let r = start;
  r += mulFold64(load<u64>(acc) ^ load<u64>(secret), load<u64>(acc, 8) ^ load<u64>(secret, 8));
  r += mulFold64(load<u64>(acc, 16) ^ load<u64>(secret, 16), load<u64>(acc, 24) ^ load<u64>(secret, 24));
  r += mulFold64(load<u64>(acc, 32) ^ load<u64>(secret, 32), load<u64>(acc, 40) ^ load<u64>(secret, 40));
  r += mulFold64(load<u64>(acc, 48) ^ load<u64>(secret, 48), load<u64>(acc, 56) ^ load<u64>(secret, 56));
  return avalanche(r);
}

/**
 * XXH3-128 of the 4 KiB page at `p` with the long-path `secret` (secretFor): writes (low,
 * high) at `out`. Shared with the kernels that hash pages as they encode or apply them.
 */
@inline export function hashPage128(p: usize, secret: usize, out: usize): void {
  accumulateLong(p, PAGE_SIZE, secret);
  store<u64>(out, mergeAccs(secret + MERGEACCS_START, <u64>PAGE_SIZE * PRIME64_1));
  store<u64>(out, mergeAccs(secret + SECRET_SIZE - STRIPE_LEN - MERGEACCS_START, ~(<u64>PAGE_SIZE * PRIME64_2)), 8);
}

/** A zero page, for its hash (zeroPageHash128). */
const ZERO_PAGE: usize = memory.data(<i32>PAGE_SIZE, 16);

/** XXH3-128 of an all-zero page with `secret`, at `out`: what every zero page hashes to. */
export function zeroPageHash128(secret: usize, out: usize): void {
  hashPage128(ZERO_PAGE, secret, out);
}

/**
 * The secret for the long path: kSecret for seed 0, else the derived secret
 * (XXH3_initCustomSecret) in a static buffer, valid until the next call with another seed.
 * Shared with the kernels that hash pages as they encode or apply them.
 */
export function secretFor(seed: u64): usize {
  if (seed == 0) return K_SECRET;
  const custom = scratch + SCRATCH_SECRET;
  for (let i: usize = 0; i < SECRET_SIZE; i += 16) {
    store<u64>(custom + i, load<u64>(K_SECRET + i) + seed);
    store<u64>(custom + i, load<u64>(K_SECRET + i, 8) - seed, 8);
  }
  return custom;
}

// ---- XXH3-64 ---------------------------------------------------------------------------

function hash64Short(input: usize, len: usize, seed: u64): u64 {
  const s = K_SECRET;
  if (len > 8) {
    const bitflip1 = (load<u64>(s, 24) ^ load<u64>(s, 32)) + seed;
    const bitflip2 = (load<u64>(s, 40) ^ load<u64>(s, 48)) - seed;
    const lo = load<u64>(input) ^ bitflip1;
    const hi = load<u64>(input + len - 8) ^ bitflip2;
    return avalanche(<u64>len + bswap<u64>(lo) + hi + mulFold64(lo, hi));
  }
  if (len >= 4) {
    const sd = seed ^ (<u64>bswap<u32>(<u32>seed) << 32);
    const in1 = <u64>load<u32>(input);
    const in2 = <u64>load<u32>(input + len - 4);
    const bitflip = (load<u64>(s, 8) ^ load<u64>(s, 16)) - sd;
    return rrmxmx((in2 + (in1 << 32)) ^ bitflip, <u64>len);
  }
  if (len > 0) {
    const c1 = <u32>load<u8>(input), c2 = <u32>load<u8>(input + (len >> 1)), c3 = <u32>load<u8>(input + len - 1);
    const combined = (c1 << 16) | (c2 << 24) | c3 | (<u32>len << 8);
    const bitflip = <u64>(load<u32>(s) ^ load<u32>(s, 4)) + seed;
    return avalancheXxh64(<u64>combined ^ bitflip);
  }
  return avalancheXxh64(seed ^ (load<u64>(s, 56) ^ load<u64>(s, 64)));
}

function hash64Mid(input: usize, len: usize, seed: u64): u64 {
  const s = K_SECRET;
  let acc = <u64>len * PRIME64_1;
  if (len <= 128) {
    if (len > 32) {
      if (len > 64) {
        if (len > 96) {
          acc += mix16(input + 48, s + 96, seed);
          acc += mix16(input + len - 64, s + 112, seed);
        }
        acc += mix16(input + 32, s + 64, seed);
        acc += mix16(input + len - 48, s + 80, seed);
      }
      acc += mix16(input + 16, s + 32, seed);
      acc += mix16(input + len - 32, s + 48, seed);
    }
    acc += mix16(input, s, seed);
    acc += mix16(input + len - 16, s + 16, seed);
    return avalanche(acc);
  }
  const rounds = len >> 4;
  for (let i: usize = 0; i < 8; i++) acc += mix16(input + 16 * i, s + 16 * i, seed);
  acc = avalanche(acc);
  for (let i: usize = 8; i < rounds; i++) acc += mix16(input + 16 * i, s + 16 * (i - 8) + MIDSIZE_STARTOFFSET, seed);
  acc += mix16(input + len - 16, s + SECRET_SIZE_MIN - MIDSIZE_LASTOFFSET, seed);
  return avalanche(acc);
}

/** XXH3-64 of `len` bytes at `input` with `seed`. */
@inline function hash64(input: usize, len: usize, seed: u64, secret: usize): u64 {
  if (len <= 16) return hash64Short(input, len, seed);
  if (len <= 240) return hash64Mid(input, len, seed);
  accumulateLong(input, len, secret);
  return mergeAccs(secret + MERGEACCS_START, <u64>len * PRIME64_1);
}

// ---- XXH3-128 --------------------------------------------------------------------------

/** High half of the last 128-bit result (the low half is returned). */
let high128: u64 = 0;

function hash128Short(input: usize, len: usize, seed: u64): u64 {
  const s = K_SECRET;
  if (len > 8) {
    const bitflipl = (load<u64>(s, 32) ^ load<u64>(s, 40)) - seed;
    const bitfliph = (load<u64>(s, 48) ^ load<u64>(s, 56)) + seed;
    const inLo = load<u64>(input);
    let inHi = load<u64>(input + len - 8);
    let mLo = mul128(inLo ^ inHi ^ bitflipl, PRIME64_1);
    let mHi = mulHigh;
    mLo += <u64>(len - 1) << 54;
    inHi ^= bitfliph;
    mHi += inHi + (inHi & 0xffffffff) * (PRIME32_2 - 1);
    mLo ^= bswap<u64>(mHi);
    let hLo = mul128(mLo, PRIME64_2);
    let hHi = mulHigh + mHi * PRIME64_2;
    high128 = avalanche(hHi);
    return avalanche(hLo);
  }
  if (len >= 4) {
    const sd = seed ^ (<u64>bswap<u32>(<u32>seed) << 32);
    const inLo = <u64>load<u32>(input);
    const inHi = <u64>load<u32>(input + len - 4);
    const bitflip = (load<u64>(s, 16) ^ load<u64>(s, 24)) + sd;
    const keyed = (inLo + (inHi << 32)) ^ bitflip;
    let mLo = mul128(keyed, PRIME64_1 + (<u64>len << 2));
    let mHi = mulHigh;
    mHi += mLo << 1;
    mLo ^= mHi >> 3;
    mLo ^= mLo >> 35;
    mLo *= PRIME_MX2;
    mLo ^= mLo >> 28;
    high128 = avalanche(mHi);
    return mLo;
  }
  if (len > 0) {
    const c1 = <u32>load<u8>(input), c2 = <u32>load<u8>(input + (len >> 1)), c3 = <u32>load<u8>(input + len - 1);
    const combinedl = (c1 << 16) | (c2 << 24) | c3 | (<u32>len << 8);
    const combinedh = rotl<u32>(bswap<u32>(combinedl), 13);
    const bitflipl = <u64>(load<u32>(s) ^ load<u32>(s, 4)) + seed;
    const bitfliph = <u64>(load<u32>(s, 8) ^ load<u32>(s, 12)) - seed;
    high128 = avalancheXxh64(<u64>combinedh ^ bitfliph);
    return avalancheXxh64(<u64>combinedl ^ bitflipl);
  }
  high128 = avalancheXxh64(seed ^ (load<u64>(s, 80) ^ load<u64>(s, 88)));
  return avalancheXxh64(seed ^ (load<u64>(s, 64) ^ load<u64>(s, 72)));
}

let accLo: u64 = 0;
let accHi: u64 = 0;

/** XXH128_mix32B on (accLo, accHi). */
@inline function mix32(in1: usize, in2: usize, secret: usize, seed: u64): void {
  accLo += mix16(in1, secret, seed);
  accLo ^= load<u64>(in2) + load<u64>(in2, 8);
  accHi += mix16(in2, secret + 16, seed);
  accHi ^= load<u64>(in1) + load<u64>(in1, 8);
}

function hash128Mid(input: usize, len: usize, seed: u64): u64 {
  const s = K_SECRET;
  accLo = <u64>len * PRIME64_1;
  accHi = 0;
  if (len <= 128) {
    if (len > 32) {
      if (len > 64) {
        if (len > 96) mix32(input + 48, input + len - 64, s + 96, seed);
        mix32(input + 32, input + len - 48, s + 64, seed);
      }
      mix32(input + 16, input + len - 32, s + 32, seed);
    }
    mix32(input, input + len - 16, s, seed);
  } else {
    const rounds = len >> 5;
    for (let i: usize = 0; i < 4; i++) mix32(input + 32 * i, input + 32 * i + 16, s + 32 * i, seed);
    accLo = avalanche(accLo);
    accHi = avalanche(accHi);
    for (let i: usize = 4; i < rounds; i++) mix32(input + 32 * i, input + 32 * i + 16, s + MIDSIZE_STARTOFFSET + 32 * (i - 4), seed);
    mix32(input + len - 16, input + len - 32, s + SECRET_SIZE_MIN - MIDSIZE_LASTOFFSET - 16, 0 - seed);
  }
  const lo = accLo + accHi;
  const hi = accLo * PRIME64_1 + accHi * PRIME64_4 + (<u64>len - seed) * PRIME64_2;
  high128 = 0 - avalanche(hi);
  return avalanche(lo);
}

/** XXH3-128 of `len` bytes at `input`: returns the low half, leaves the high half in high128. */
@inline function hash128(input: usize, len: usize, seed: u64, secret: usize): u64 {
  if (len <= 16) return hash128Short(input, len, seed);
  if (len <= 240) return hash128Mid(input, len, seed);
  accumulateLong(input, len, secret);
  high128 = mergeAccs(secret + SECRET_SIZE - STRIPE_LEN - MERGEACCS_START, ~(<u64>len * PRIME64_2));
  return mergeAccs(secret + MERGEACCS_START, <u64>len * PRIME64_1);
}

// ---- exports ---------------------------------------------------------------------------

@inline function seedOf(seedLo: u32, seedHi: u32): u64 {
  return (<u64>seedHi << 32) | <u64>seedLo;
}

/** XXH3-64 of `len` bytes at `input` with seed (seedHi:seedLo); writes the u64 at `out`. */
export function xxh3Hash64(input: usize, len: usize, seedLo: u32, seedHi: u32, out: usize): void {
  const seed = seedOf(seedLo, seedHi);
  store<u64>(out, hash64(input, len, seed, len > 240 ? secretFor(seed) : K_SECRET));
}

/** XXH3-128 of `len` bytes at `input`; writes (low u64, high u64) at `out`. */
export function xxh3Hash128(input: usize, len: usize, seedLo: u32, seedHi: u32, out: usize): void {
  const seed = seedOf(seedLo, seedHi);
  store<u64>(out, hash128(input, len, seed, len > 240 ? secretFor(seed) : K_SECRET));
  store<u64>(out, high128, 8);
}

/**
 * Hashes `count` consecutive 4 KiB pages at `pages`: XXH3-64 (bits = 64, one u64 per page
 * at `out`) or XXH3-128 (bits = 128, low then high u64 per page). Returns `count`, or
 * HASH_BAD_BITS. Cost: one read of the pages (~0.3 µs per page on the SIMD path).
 */
export function hashPages(pages: usize, count: u32, out: usize, bits: u32, seedLo: u32, seedHi: u32): i32 {
  if (bits != 64 && bits != 128) return HASH_BAD_BITS;
  const secret = secretFor(seedOf(seedLo, seedHi));
  if (bits == 64) {
    for (let i: u32 = 0; i < count; i++) {
      const p = pages + (<usize>i << 12);
      accumulateLong(p, PAGE_SIZE, secret);
      store<u64>(out + (<usize>i << 3), mergeAccs(secret + MERGEACCS_START, <u64>PAGE_SIZE * PRIME64_1));
    }
  } else {
    for (let i: u32 = 0; i < count; i++) hashPage128(pages + (<usize>i << 12), secret, out + (<usize>i << 4));
  }
  return <i32>count;
}

/**
 * Like hashPages for the pages `mem + indices[i] * 4096` (u32 indices, i < count): the
 * gather form used on a dirty-page list. The caller checks the indices against memory.
 */
export function hashPageList(mem: usize, indices: usize, count: u32, out: usize, bits: u32, seedLo: u32, seedHi: u32): i32 {
  if (bits != 64 && bits != 128) return HASH_BAD_BITS;
  const secret = secretFor(seedOf(seedLo, seedHi));
  for (let i: u32 = 0; i < count; i++) {
    const p = mem + (<usize>load<u32>(indices + (<usize>i << 2)) << 12);
    if (bits == 128) {
      hashPage128(p, secret, out + (<usize>i << 4));
      continue;
    }
    accumulateLong(p, PAGE_SIZE, secret);
    store<u64>(out + (<usize>i << 3), mergeAccs(secret + MERGEACCS_START, <u64>PAGE_SIZE * PRIME64_1));
  }
  return <i32>count;
}

/**
 * Exact dirty scan: hashes each of `count` pages at `pages` with XXH3-128, compares the
 * result with the 16 bytes at `hashes + 16 i` (the previous scan), stores the new hash
 * there and, when `mark` is non-zero and the hash changed, sets bit `first + i` of the
 * bitmap at `bits` (plain OR: no other thread may write the same bitmap word meanwhile).
 * Returns the number of changed pages. Cost: one read of the pages plus 16 bytes per page.
 * The hash goes straight into the table (the old one kept in locals): instances sharing
 * one memory scan disjoint ranges of one table at once, so no fixed address is written.
 */
export function scanChangedPages(pages: usize, count: u32, hashes: usize, bits: usize, first: u32, mark: u32, seedLo: u32, seedHi: u32): u32 {
  const secret = secretFor(seedOf(seedLo, seedHi));
  let changed: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const h = hashes + (<usize>i << 4);
    const oldLo = load<u64>(h);
    const oldHi = load<u64>(h, 8);
    hashPage128(pages + (<usize>i << 12), secret, h);
    if (load<u64>(h) != oldLo || load<u64>(h, 8) != oldHi) {
      changed++;
      if (mark) {
        const page = first + i;
        const w = bits + (<usize>(page >> 5) << 2);
        store<u32>(w, load<u32>(w) | (<u32>1 << (page & 31)));
      }
    }
  }
  return changed;
}
