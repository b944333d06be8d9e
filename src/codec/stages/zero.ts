// Stage "zero": one kernel pass finds the batch's all-zero pages; each is sent as a ZERO
// record with no payload, ahead of the batch's other records, and applied by writing zeros.
import type { DirtyBitmap } from "../../kernel/dirty-bitmap.js";
import type { Kernel } from "../../kernel/kernel.js";
import { PAGE_SIZE } from "../../kernel/abi.js";
import { RecordKind, type PageRecordWriter } from "../../wire/page-record.js";
import type { ApplyTarget } from "./apply-target.js";
import { SKIP } from "./unchanged.js";

const ZERO_PAGE = new Uint8Array(PAGE_SIZE);

/**
 * Emits a ZERO record for each batch page not already SKIP whose snapshot (at `snapshot`
 * in kernel memory) is all zero, marks it ZERO in `kind`, and returns their batch positions.
 * Cost: one kernel call for the batch.
 */
export function emitZeroPages(
  k: Kernel,
  bits: DirtyBitmap,
  snapshot: number,
  list: Uint32Array,
  kind: Int8Array,
  out: PageRecordWriter,
): number[] {
  bits.clearAll();
  k.raw.zeroPages(snapshot, list.length, bits.region.ptr);
  const words = bits.sharedWords();
  const found: number[] = [];
  for (let i = 0; i < list.length; i++) {
    if (kind[i] !== SKIP && (words[i >>> 5] >>> (i & 31)) & 1) {
      kind[i] = RecordKind.ZERO;
      out.add(RecordKind.ZERO, list[i]);
      found.push(i);
    }
  }
  return found;
}

export function applyZeroRecord(t: ApplyTarget, page: number): void {
  t.memory.writePage(page, ZERO_PAGE);
}
