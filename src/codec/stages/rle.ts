// Stage "rle": the run-length page codec (assembly/rle.ts grammar, codec/rle.ts) for pages
// with enough uniform 8-byte words, each encoding capped at a byte budget (the encode
// pipeline's kernel runs it); applied in place on the destination's page.
import { decodeRle } from "../rle.js";
import { updatePage, type ApplyTarget } from "./apply-target.js";

export function applyRleRecord(t: ApplyTarget, page: number, body: Uint8Array): Uint8Array {
  return updatePage(t, page, (p) => decodeRle(t.kernel, body, p));
}
