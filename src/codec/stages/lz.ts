// Stage "lz": the page-local LZ77 codec (assembly/lz.ts grammar, codec/lz.ts) for first
// copies of pages with real content, each encoding capped at a byte budget (the encode
// pipeline's kernel runs it); applied in place on the destination's page.
import { decodeLz } from "../lz.js";
import { updatePage, type ApplyTarget } from "./apply-target.js";

export function applyLzRecord(t: ApplyTarget, page: number, body: Uint8Array): Uint8Array {
  return updatePage(t, page, (p) => decodeLz(t.kernel, body, p));
}
