// Stage "xbzrle": a delta (QEMU's migration/xbzrle.c grammar, codec/xbzrle.ts) against the
// copy the XBZRLE cache keeps of what the destination holds (the encode pipeline's kernel
// keeps that copy equal to the destination's page whatever stage a page takes; QEMU does
// this for zero pages: xbzrle_cache_zero_page); applied in place on the destination's page.
import { decodeXbzrle } from "../xbzrle.js";
import { updatePage, type ApplyTarget } from "./apply-target.js";

export function applyXbzrleRecord(t: ApplyTarget, page: number, body: Uint8Array): Uint8Array {
  // a delta against the page as it is here; the decoder leaves it unchanged on bad input
  return updatePage(t, page, (p) => void decodeXbzrle(t.kernel, body, p));
}
