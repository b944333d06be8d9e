// Stage "zero": an all-zero page is sent as a ZERO record with no payload (the encode
// pipeline's kernel checks each page as it copies it) and applied by writing zeros,
// unless the page is already zero: a fresh destination page is then never touched (no
// page fault, no block of a sparse file).
import { PAGE_SIZE } from "../../kernel/abi.js";
import type { ApplyTarget } from "./apply-target.js";

const ZERO_PAGE = new Uint8Array(PAGE_SIZE);

export function applyZeroRecord(t: ApplyTarget, page: number): Uint8Array {
  let current = t.memory.pageView(page);
  if (!current) {
    t.memory.readPages([page], t.scratch);
    current = t.scratch;
  }
  if (t.kernel.isZeroPage(current)) t.zeroPagesUnwritten++;
  else t.memory.writePage(page, ZERO_PAGE);
  return ZERO_PAGE;
}
