// Stage "zero": an all-zero page is sent as a ZERO record with no payload (the encode
// pipeline's kernel checks each page as it copies it) and applied by writing zeros.
import { PAGE_SIZE } from "../../kernel/abi.js";
import type { ApplyTarget } from "./apply-target.js";

const ZERO_PAGE = new Uint8Array(PAGE_SIZE);

export function applyZeroRecord(t: ApplyTarget, page: number): void {
  t.memory.writePage(page, ZERO_PAGE);
}
