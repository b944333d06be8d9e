// RLE page codec: the grammar and the encoder's rule are at the top of assembly/rle.ts.
// Wrappers check sizes, stage plain arrays through kernel memory and turn negative kernel
// codes into typed errors.
import { PagewireError, PagewireRangeError } from "../errors.js";
import { PAGE_SIZE } from "../kernel/abi.js";
import type { Kernel } from "../kernel/kernel.js";

/** An input that is not a valid RLE page encoding (code `RLE_CORRUPT`). */
export class RleError extends PagewireError {
  /** Index of the page whose encoding is invalid (batch decode), else 0. */
  readonly page: number;
  constructor(message: string, page = 0) {
    super("RLE_CORRUPT", message);
    this.page = page;
  }
}

function needBytes(what: string, view: ArrayBufferView, n: number): void {
  if (view.byteLength < n)
    throw new PagewireRangeError("BUFFER_TOO_SHORT", `${what}: need ${n} bytes, got ${view.byteLength}`);
}

function checkCount(what: string, count: number): void {
  if (!Number.isInteger(count) || count < 0)
    throw new PagewireRangeError("PAGE_COUNT", `${what}: page count must be a non-negative integer, got ${count}`);
}

/**
 * RLE-encodes the 4 KiB `page` into `out` (its length is the limit). Returns the encoded
 * length, or -1 when it does not fit (send the page raw). Cost: one SIMD pass over the
 * page plus a copy of the literal bytes.
 */
export function encodeRle(k: Kernel, page: Uint8Array, out: Uint8Array): number {
  needBytes("rleEncode page", page, PAGE_SIZE);
  const dlen = Math.min(out.byteLength, 0x7fffffff);
  return k.withPointers([page, out], [out], ([p, d]) => k.raw.rleEncode(p, d, dlen));
}

/**
 * Decodes `encoded` (all of it) into the 4 KiB `page`. Throws RleError (`RLE_CORRUPT`)
 * on an invalid input, leaving `page` unchanged.
 */
export function decodeRle(k: Kernel, encoded: Uint8Array, page: Uint8Array): void {
  needBytes("rleDecode page", page, PAGE_SIZE);
  const r = k.withPointers([encoded, page], [page], ([e, p]) => k.raw.rleDecode(e, encoded.byteLength, p));
  if (r < 0) throw invalidRle(encoded.byteLength);
}

/** The error for an RLE encoding of `bytes` bytes the decoder rejects. */
export function invalidRle(bytes: number): RleError {
  return new RleError(`rleDecode: invalid RLE encoding of ${bytes} bytes for a ${PAGE_SIZE}-byte page`);
}

/**
 * RLE-encodes `count` packed pages with the 4096-byte limit each; encodings packed back to
 * back in `out` (count × 4096 bytes), lengths[i] = -1 or page i's length. Returns the total.
 */
export function encodeRlePages(
  k: Kernel,
  pages: Uint8Array,
  count: number,
  out: Uint8Array,
  lengths: Int32Array,
): number {
  checkCount("rleEncodePages", count);
  needBytes("rleEncodePages pages", pages, count * PAGE_SIZE);
  needBytes("rleEncodePages out", out, count * PAGE_SIZE);
  needBytes("rleEncodePages lengths", lengths, count * 4);
  return k.withPointers([pages, out, lengths], [out, lengths], ([p, d, l]) => k.raw.rleEncodePages(p, count, d, l));
}

/**
 * Decodes `count` packed encodings (lengths[i] bytes each; -1 entries, pages sent raw, are
 * skipped) into the packed `pages`. Returns the bytes consumed; throws RleError naming the
 * first invalid page (pages before it decoded, it and later ones untouched).
 */
export function decodeRlePages(
  k: Kernel,
  encoded: Uint8Array,
  lengths: Int32Array,
  pages: Uint8Array,
  count: number,
): number {
  checkCount("rleDecodePages", count);
  needBytes("rleDecodePages pages", pages, count * PAGE_SIZE);
  needBytes("rleDecodePages lengths", lengths, count * 4);
  let total = 0;
  for (let i = 0; i < count; i++) {
    const n = lengths[i];
    if (n > 0) total += n;
    else if (n !== -1)
      throw new PagewireRangeError("RLE_LENGTH", `rleDecodePages: lengths[${i}] = ${n}, want -1 or a positive length`);
  }
  needBytes("rleDecodePages encoded", encoded, total);
  const r = k.withPointers([encoded, lengths, pages], [pages], ([e, l, p]) => k.raw.rleDecodePages(e, l, p, count));
  if (r < 0) {
    const page = -1 - r;
    throw new RleError(
      `rleDecodePages: page ${page} of ${count}: invalid RLE encoding of ${lengths[page]} bytes`,
      page,
    );
  }
  return r;
}
