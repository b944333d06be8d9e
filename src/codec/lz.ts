// LZ page codec: the grammar, the encoder's rule and the decoder's checks are at the top
// of assembly/lz.ts. Wrappers check sizes, stage plain arrays through kernel memory and
// turn negative kernel codes into typed errors.
import { PagewireError, PagewireRangeError } from "../errors.js";
import { LZ_TABLE_BYTES, PAGE_SIZE } from "../kernel/abi.js";
import type { Kernel } from "../kernel/kernel.js";

/** An input that is not a valid LZ page encoding (code `LZ_CORRUPT`). */
export class LzError extends PagewireError {
  constructor(message: string) {
    super("LZ_CORRUPT", message);
  }
}

function needBytes(what: string, view: ArrayBufferView, n: number): void {
  if (view.byteLength < n)
    throw new PagewireRangeError("BUFFER_TOO_SHORT", `${what}: need ${n} bytes, got ${view.byteLength}`);
}

/**
 * LZ-encodes the 4 KiB `page` into `out` (its length is the budget). Returns the encoded
 * length, or -1 when it does not fit (send the page raw); the encoder gives up early on
 * a page that, from a quarter of it on, shrinks too little to fit. Cost: a skim of the page
 * for matches plus the copy of its literals (~µs per page); stages a hash table per call.
 */
export function encodeLz(k: Kernel, page: Uint8Array, out: Uint8Array): number {
  needBytes("lzEncode page", page, PAGE_SIZE);
  const dlen = Math.min(out.byteLength, 0x7fffffff);
  const table = k.alloc(LZ_TABLE_BYTES, 64);
  try {
    return k.withPointers([page, out], [out], ([p, d]) => k.raw.lzEncode(p, d, dlen, table.ptr));
  } finally {
    k.free(table);
  }
}

/**
 * Decodes `encoded` (all of it) into the 4 KiB `page`. Throws LzError (`LZ_CORRUPT`) on
 * an invalid input, leaving `page` unchanged.
 */
export function decodeLz(k: Kernel, encoded: Uint8Array, page: Uint8Array): void {
  needBytes("lzDecode page", page, PAGE_SIZE);
  const r = k.withPointers([encoded, page], [page], ([e, p]) => k.raw.lzDecode(e, encoded.byteLength, p));
  if (r < 0) throw invalidLz(encoded.byteLength);
}

/** The error for an LZ encoding of `bytes` bytes the decoder rejects. */
export function invalidLz(bytes: number): LzError {
  return new LzError(`lzDecode: invalid LZ encoding of ${bytes} bytes for a ${PAGE_SIZE}-byte page`);
}
