// Typed wrappers over assembly/pagehash.ts: XXH3-64 / XXH3-128 of bytes and of 4 KiB pages.
// Hash values are bigints (u64) or BigUint64Array words; 128-bit results are two words,
// low then high (xxHash's XXH128_hash_t {low64, high64}).
import { PagewireRangeError } from "../errors.js";
import { PAGE_SIZE } from "./abi.js";
import type { Kernel } from "./kernel.js";

const U64 = (1n << 64n) - 1n;

export interface HashPagesOptions {
  /** 64 (one u64 per page) or 128 (two u64 per page: low, high). Default 64. */
  bits?: 64 | 128;
  /** XXH3 seed (u64). Default 0n. */
  seed?: bigint;
}

/** A 128-bit hash as (low, high) u64 halves. */
export interface Hash128 {
  low: bigint;
  high: bigint;
}

/** Splits a u64 seed into the (lo, hi) u32 pair the kernel takes. */
export function splitSeed(seed: bigint): [number, number] {
  if (typeof seed !== "bigint" || seed < 0n || seed > U64) {
    throw new PagewireRangeError("HASH_SEED", `hash seed must be a bigint in 0..2^64-1, got ${String(seed)}`);
  }
  return [Number(seed & 0xffffffffn), Number(seed >> 32n)];
}

/** A random u64 seed from the platform CSPRNG: one per migration, so that hash collisions cannot be planned. */
export function randomSeed(): bigint {
  const w = new Uint32Array(2);
  globalThis.crypto.getRandomValues(w);
  return (BigInt(w[1]) << 32n) | BigInt(w[0]);
}

/** XXH3-64 of any bytes (copied into kernel scratch unless already in kernel memory). */
export function hashBytes64(k: Kernel, data: Uint8Array, seed = 0n): bigint {
  const [lo, hi] = splitSeed(seed);
  const out = k.alloc(16, 16);
  try {
    k.withPointers([data], [], ([p]) => k.raw.xxh3Hash64(p, data.byteLength, lo, hi, out.ptr));
    return new BigUint64Array(k.memory.buffer, out.ptr, 1)[0];
  } finally {
    k.free(out);
  }
}

/** XXH3-128 of any bytes as (low, high). */
export function hashBytes128(k: Kernel, data: Uint8Array, seed = 0n): Hash128 {
  const [lo, hi] = splitSeed(seed);
  const out = k.alloc(16, 16);
  try {
    k.withPointers([data], [], ([p]) => k.raw.xxh3Hash128(p, data.byteLength, lo, hi, out.ptr));
    const w = new BigUint64Array(k.memory.buffer, out.ptr, 2);
    return { low: w[0], high: w[1] };
  } finally {
    k.free(out);
  }
}

/**
 * Hashes `count` consecutive 4 KiB pages of `pages` into `out` (one or two u64 per page).
 * Zero copy when both are views of kernel memory; otherwise the pages are copied in
 * (one memcpy, which then dominates the cost). Returns `out`.
 */
export function hashPages(
  k: Kernel,
  pages: Uint8Array,
  count: number,
  out: BigUint64Array,
  options: HashPagesOptions = {},
): BigUint64Array {
  const bits = options.bits ?? 64;
  if (bits !== 64 && bits !== 128)
    throw new PagewireRangeError("HASH_BITS", `hashPages: bits must be 64 or 128, got ${String(bits)}`);
  const [lo, hi] = splitSeed(options.seed ?? 0n);
  checkCount("hashPages", count);
  if (pages.byteLength < count * PAGE_SIZE)
    throw new PagewireRangeError(
      "BUFFER_TOO_SHORT",
      `hashPages: ${count} pages need ${count * PAGE_SIZE} bytes, got ${pages.byteLength}`,
    );
  const words = bits === 64 ? count : 2 * count;
  if (out.length < words)
    throw new PagewireRangeError(
      "BUFFER_TOO_SHORT",
      `hashPages: ${count} pages at ${bits} bits need ${words} u64 words of output, got ${out.length}`,
    );
  if (count === 0) return out;
  const src = pages.subarray(0, count * PAGE_SIZE);
  const dst = out.subarray(0, words);
  k.withPointers([src, dst], [dst], ([p, o]) => k.raw.hashPages(p, count, o, bits, lo, hi));
  return out;
}

/**
 * Hashes the pages `mem[idx * 4096 …]` for each idx of `indices` (a dirty-page list) into
 * `out`. Zero copy when `mem` is a view of kernel memory; otherwise only the listed pages
 * are copied in (one page copy each).
 */
export function hashPageList(
  k: Kernel,
  mem: Uint8Array,
  indices: Uint32Array,
  out: BigUint64Array,
  options: HashPagesOptions = {},
): BigUint64Array {
  const bits = options.bits ?? 64;
  if (bits !== 64 && bits !== 128)
    throw new PagewireRangeError("HASH_BITS", `hashPageList: bits must be 64 or 128, got ${String(bits)}`);
  const [lo, hi] = splitSeed(options.seed ?? 0n);
  const pageCount = Math.floor(mem.byteLength / PAGE_SIZE);
  for (let i = 0; i < indices.length; i++) {
    if (indices[i] >= pageCount)
      throw new PagewireRangeError("PAGE_INDEX", `hashPageList: page ${indices[i]} is outside 0..${pageCount}`);
  }
  const words = bits === 64 ? indices.length : 2 * indices.length;
  if (out.length < words)
    throw new PagewireRangeError(
      "BUFFER_TOO_SHORT",
      `hashPageList: ${indices.length} pages at ${bits} bits need ${words} u64 words of output, got ${out.length}`,
    );
  if (indices.length === 0) return out;
  const dst = out.subarray(0, words);
  if (k.owns(mem)) {
    k.withPointers([mem, indices, dst], [dst], ([m, ix, o]) =>
      k.raw.hashPageList(m, ix, indices.length, o, bits, lo, hi),
    );
    return out;
  }
  // memory outside the kernel: copy in only the listed pages, then hash them contiguously
  const n = indices.length;
  const scratch = k.alloc(n * PAGE_SIZE, 64);
  try {
    const s = k.bytes(scratch);
    for (let i = 0; i < n; i++)
      s.set(mem.subarray(indices[i] * PAGE_SIZE, (indices[i] + 1) * PAGE_SIZE), i * PAGE_SIZE);
    k.withPointers([dst], [dst], ([o]) => k.raw.hashPages(scratch.ptr, n, o, bits, lo, hi));
  } finally {
    k.free(scratch);
  }
  return out;
}

function checkCount(what: string, count: number): void {
  if (!Number.isInteger(count) || count < 0 || count > 0xfffff) {
    throw new PagewireRangeError("PAGE_COUNT", `${what}: page count must be an integer in 0..${0xfffff}, got ${count}`);
  }
}
