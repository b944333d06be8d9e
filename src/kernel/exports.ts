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
  bitmapRanges(bits: number, words: number, out: number, capacity: number): number;
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

  // assembly/gather.ts
  gatherPages(mem: number, pageCount: number, pages: number, count: number, out: number): number;
  // assembly/pagehash.ts, assembly/dedup.ts (page hashing, dedup index)
  xxh3Hash64(input: number, len: number, seedLo: number, seedHi: number, out: number): void;
  xxh3Hash128(input: number, len: number, seedLo: number, seedHi: number, out: number): void;
  hashPages(pages: number, count: number, out: number, bits: number, seedLo: number, seedHi: number): number;
  hashPageList(mem: number, indices: number, count: number, out: number, bits: number, seedLo: number, seedHi: number): number;
  scanChangedPages(pages: number, count: number, hashes: number, bits: number, first: number, mark: number, seedLo: number, seedHi: number): number;
  dedupReset(table: number, bucketCount: number): void;
  dedupApply(table: number, bucketMask: number, reverse: number, guest: number, base: number, pages: number, hashes: number, count: number, out: number, lookup: number): number;
  dedupInvalidate(table: number, reverse: number, base: number, pages: number, count: number): void;
  // assembly/xbzrle.ts
  xbzrleEncode(old: number, cur: number, dst: number, dlen: number): number;
  xbzrleEncodePages(old: number, cur: number, count: number, out: number, lengths: number): number;
  xbzrleCheck(src: number, slen: number): number;
  xbzrleDecode(src: number, slen: number, dst: number): number;
  xbzrleDecodePages(src: number, lengths: number, pages: number, count: number): number;
  // assembly/cache.ts
  xbzrleCacheSavePages(tags: number, ages: number, data: number, slots: number, ram: number, pageIdx: number, count: number,
    generation: number, lastStage: number, scratch: number, out: number, lengths: number, packed: number): number;
  // assembly/rle.ts
  rleEncode(page: number, dst: number, dlen: number): number;
  rleEncodePages(pages: number, count: number, out: number, lengths: number): number;
  rleCandidates(pages: number, count: number, minUniformWords: number, out: number): number;
  rleCheck(src: number, slen: number): number;
  rleDecode(src: number, slen: number, dst: number): number;
  rleDecodePages(src: number, lengths: number, pages: number, count: number): number;
  // assembly/history.ts
  historyRecordWrites(h: number, pages: number, count: number): number;
  historyRecordRound(h: number, bits: number, withDistances: number): number;
  historyMarkSent(h: number, bits: number, round: number): number;
  historyGather(h: number, bits: number, field: number, out: number, capacity: number): number;
  historySumCounts(h: number, bits: number, out: number): number;
  historyFilter(h: number, bits: number, field: number, threshold: number, atLeast: number, out: number): number;
  historyFilterWeighted(h: number, bits: number, weights: number, threshold: number, out: number): number;
}
