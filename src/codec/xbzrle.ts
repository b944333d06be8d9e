// XBZRLE page delta codec, QEMU-compatible: the grammar and rules are at the top of
// assembly/xbzrle.ts. These wrappers check sizes, stage plain arrays through kernel
// memory (Kernel.withPointers) and turn negative kernel codes into typed errors.
import { PagewireError, PagewireRangeError } from "../errors.js";
import { PAGE_SIZE } from "../kernel/abi.js";
import type { Kernel } from "../kernel/kernel.js";

/** An XBZRLE encoding that QEMU's decoder would reject (code `XBZRLE_CORRUPT`). */
export class XbzrleError extends PagewireError {
  /** Index of the page whose encoding is invalid (batch decode), else 0. */
  readonly page: number;
  constructor(message: string, page = 0) {
    super("XBZRLE_CORRUPT", message);
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
 * Encodes `newPage` against `oldPage` (4 KiB each) into `out`, whose length is the limit
 * (`dlen`; 4096 as QEMU calls it). Returns n > 0 bytes written, 0 when the pages are
 * identical, -1 on overflow — the same values as QEMU's portable encoder. Cost: a SIMD
 * pass over both pages (≈ memcpy speed for equal pages) plus a copy of the changed bytes.
 */
export function encodeXbzrle(k: Kernel, oldPage: Uint8Array, newPage: Uint8Array, out: Uint8Array): number {
  needBytes("xbzrleEncode oldPage", oldPage, PAGE_SIZE);
  needBytes("xbzrleEncode newPage", newPage, PAGE_SIZE);
  const dlen = Math.min(out.byteLength, 0x7fffffff);
  return k.withPointers([oldPage, newPage, out], [out], ([o, n, d]) => k.raw.xbzrleEncode(o, n, d, dlen));
}

/**
 * Applies `encoded` (all of it) to the 4 KiB `page`. Returns the offset just past the
 * last changed run, as QEMU's decoder does. Throws XbzrleError (`XBZRLE_CORRUPT`) on any
 * input QEMU's decoder rejects, leaving `page` unchanged. Cost: one pass over the run
 * lengths plus a copy of the changed bytes.
 */
export function decodeXbzrle(k: Kernel, encoded: Uint8Array, page: Uint8Array): number {
  needBytes("xbzrleDecode page", page, PAGE_SIZE);
  const r = k.withPointers([encoded, page], [page], ([e, p]) => k.raw.xbzrleDecode(e, encoded.byteLength, p));
  if (r < 0) throw invalidXbzrle(encoded.byteLength);
  return r;
}

/** The error for an XBZRLE encoding of `bytes` bytes the decoder rejects. */
export function invalidXbzrle(bytes: number): XbzrleError {
  return new XbzrleError(`xbzrleDecode: invalid XBZRLE encoding of ${bytes} bytes for a ${PAGE_SIZE}-byte page`);
}

/**
 * Encodes `count` page pairs (pages packed back to back in `oldPages` and `newPages`),
 * each with the 4096-byte limit. Encodings are packed back to back in `out` (at least
 * count × 4096 bytes); `lengths[i]` gets -1, 0 or page i's encoded length. Returns the
 * total encoded bytes. Pass views of kernel memory to avoid the copies in and out.
 */
export function encodeXbzrlePages(
  k: Kernel,
  oldPages: Uint8Array,
  newPages: Uint8Array,
  count: number,
  out: Uint8Array,
  lengths: Int32Array,
): number {
  checkCount("xbzrleEncodePages", count);
  needBytes("xbzrleEncodePages oldPages", oldPages, count * PAGE_SIZE);
  needBytes("xbzrleEncodePages newPages", newPages, count * PAGE_SIZE);
  needBytes("xbzrleEncodePages out", out, count * PAGE_SIZE);
  needBytes("xbzrleEncodePages lengths", lengths, count * 4);
  return k.withPointers([oldPages, newPages, out, lengths], [out, lengths], ([o, n, d, l]) =>
    k.raw.xbzrleEncodePages(o, n, count, d, l),
  );
}

/**
 * Applies `count` packed encodings (page i's is lengths[i] bytes; 0 and -1 entries are
 * skipped) to the pages packed in `pages`. Returns the encoded bytes consumed. Throws
 * XbzrleError naming the first invalid page; pages before it are decoded, it and the
 * following ones are untouched.
 */
export function decodeXbzrlePages(
  k: Kernel,
  encoded: Uint8Array,
  lengths: Int32Array,
  pages: Uint8Array,
  count: number,
): number {
  checkCount("xbzrleDecodePages", count);
  needBytes("xbzrleDecodePages pages", pages, count * PAGE_SIZE);
  needBytes("xbzrleDecodePages lengths", lengths, count * 4);
  let total = 0;
  for (let i = 0; i < count; i++) {
    const n = lengths[i];
    if (n > 0) total += n;
    else if (n !== 0 && n !== -1)
      throw new PagewireRangeError(
        "XBZRLE_LENGTH",
        `xbzrleDecodePages: lengths[${i}] = ${n}, want -1, 0 or a positive length`,
      );
  }
  needBytes("xbzrleDecodePages encoded", encoded, total);
  const r = k.withPointers([encoded, lengths, pages], [pages], ([e, l, p]) => k.raw.xbzrleDecodePages(e, l, p, count));
  if (r < 0) {
    const page = -1 - r;
    throw new XbzrleError(
      `xbzrleDecodePages: page ${page} of ${count}: invalid XBZRLE encoding of ${lengths[page]} bytes`,
      page,
    );
  }
  return r;
}
