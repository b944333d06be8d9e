// The one-page codec conveniences on Kernel (k.xbzrleEncode, k.rleDecode, …; DESIGN's
// public API). They live here, above kernel/, so that kernel/ never imports a codec:
// this module adds them to Kernel's prototype and index.ts imports it once.
import { Kernel } from "../kernel/kernel.js";
import { decodeLz, encodeLz } from "./lz.js";
import { decodeRle, decodeRlePages, encodeRle, encodeRlePages } from "./rle.js";
import { decodeXbzrle, decodeXbzrlePages, encodeXbzrle, encodeXbzrlePages } from "./xbzrle.js";

declare module "../kernel/kernel.js" {
  interface Kernel {
    /**
     * XBZRLE-encodes `newPage` against `oldPage` (4 KiB each) into `out` (its length is the
     * limit; 4096 as QEMU calls it). Returns n > 0 bytes written, 0 identical, -1 overflow.
     */
    xbzrleEncode(oldPage: Uint8Array, newPage: Uint8Array, out: Uint8Array): number;
    /**
     * Applies an XBZRLE encoding to the 4 KiB `page`; returns the offset after the last
     * changed run. Throws XbzrleError (`XBZRLE_CORRUPT`) leaving `page` unchanged.
     */
    xbzrleDecode(encoded: Uint8Array, page: Uint8Array): number;
    /** Batch XBZRLE encode of packed page pairs; see encodeXbzrlePages. Returns total bytes. */
    xbzrleEncodePages(
      oldPages: Uint8Array,
      newPages: Uint8Array,
      count: number,
      out: Uint8Array,
      lengths: Int32Array,
    ): number;
    /** Batch XBZRLE decode of packed encodings; see decodeXbzrlePages. Returns bytes consumed. */
    xbzrleDecodePages(encoded: Uint8Array, lengths: Int32Array, pages: Uint8Array, count: number): number;
    /** RLE-encodes the 4 KiB `page` into `out` (its length is the limit): length or -1. */
    rleEncode(page: Uint8Array, out: Uint8Array): number;
    /** Decodes an RLE encoding into the 4 KiB `page`; throws RleError (`RLE_CORRUPT`), page unchanged. */
    rleDecode(encoded: Uint8Array, page: Uint8Array): void;
    /** Batch RLE encode of packed pages; see encodeRlePages. Returns total bytes. */
    rleEncodePages(pages: Uint8Array, count: number, out: Uint8Array, lengths: Int32Array): number;
    /** Batch RLE decode of packed encodings; see decodeRlePages. Returns bytes consumed. */
    rleDecodePages(encoded: Uint8Array, lengths: Int32Array, pages: Uint8Array, count: number): number;
    /** LZ-encodes the 4 KiB `page` into `out` (its length is the budget): length or -1. */
    lzEncode(page: Uint8Array, out: Uint8Array): number;
    /** Decodes an LZ encoding into the 4 KiB `page`; throws LzError (`LZ_CORRUPT`), page unchanged. */
    lzDecode(encoded: Uint8Array, page: Uint8Array): void;
  }
}

const shortcuts: ThisType<Kernel> & Partial<Kernel> = {
  xbzrleEncode(oldPage, newPage, out) {
    return encodeXbzrle(this, oldPage, newPage, out);
  },
  xbzrleDecode(encoded, page) {
    return decodeXbzrle(this, encoded, page);
  },
  xbzrleEncodePages(oldPages, newPages, count, out, lengths) {
    return encodeXbzrlePages(this, oldPages, newPages, count, out, lengths);
  },
  xbzrleDecodePages(encoded, lengths, pages, count) {
    return decodeXbzrlePages(this, encoded, lengths, pages, count);
  },
  rleEncode(page, out) {
    return encodeRle(this, page, out);
  },
  rleDecode(encoded, page) {
    decodeRle(this, encoded, page);
  },
  rleEncodePages(pages, count, out, lengths) {
    return encodeRlePages(this, pages, count, out, lengths);
  },
  rleDecodePages(encoded, lengths, pages, count) {
    return decodeRlePages(this, encoded, lengths, pages, count);
  },
  lzEncode(page, out) {
    return encodeLz(this, page, out);
  },
  lzDecode(encoded, page) {
    decodeLz(this, encoded, page);
  },
};
Object.assign(Kernel.prototype, shortcuts);
