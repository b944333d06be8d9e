/**
 * The numeric exports of build/pagewire.wasm (see assembly/). Pointers and counts are
 * u32 in the module and arrive here as (possibly negative) i32: callers apply `>>> 0`
 * to unsigned results.
 */
export interface KernelExports {
  heapBase(): number;

  // assembly/bitmap.ts
  bitmapCount(bits: number, words: number): number;
  bitmapCollect(bits: number, words: number, out: number, capacity: number): number;
  bitmapNextSet(bits: number, words: number, from: number): number;
  bitmapRangeCount(bits: number, words: number): number;
  bitmapRanges(bits: number, words: number, out: number): number;
  bitmapOr(dst: number, src: number, words: number): void;
  bitmapAnd(dst: number, src: number, words: number): void;
  bitmapAndNot(dst: number, src: number, words: number): void;
  bitmapXor(dst: number, src: number, words: number): void;
  bitmapSetRange(bits: number, first: number, count: number): void;
  bitmapHarvest(src: number, dst: number, words: number, concurrent: number): number;
  pagesEqual(a: number, b: number): number;
  pageIsZero(p: number): number;
  diffPages(a: number, b: number, pageCount: number, bits: number): number;
  zeroPages(mem: number, pageCount: number, bits: number): number;
  isZeroPage(p: number): number;

  // assembly/history.ts
  historyRecordWrites(h: number, pages: number, count: number): number;
  historyRecordRound(h: number, bits: number, withDistances: number): number;
  historyMarkSent(h: number, bits: number, round: number): number;
  historyGather(h: number, bits: number, field: number, out: number, capacity: number): number;
  historySumCounts(h: number, bits: number, out: number): number;
  historyFilter(h: number, bits: number, field: number, threshold: number, atLeast: number, out: number): number;
  historyFilterWeighted(h: number, bits: number, weights: number, threshold: number, out: number): number;
}
