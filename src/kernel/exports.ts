/**
 * The numeric exports of build/pagewire.wasm (see assembly/). Pointers and counts are
 * u32 in the module and arrive here as (possibly negative) i32: callers apply `>>> 0`
 * to unsigned results.
 */
export interface KernelExports {
  heapBase(): number;

  // assembly/dirty-bitmap.ts
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
  // assembly/pagehash.ts, assembly/dedup-index.ts (page hashing, dedup index)
  setScratch(ptr: number): void;
  getScratch(): number;
  xxh3Hash64(input: number, len: number, seedLo: number, seedHi: number, out: number): void;
  xxh3Hash128(input: number, len: number, seedLo: number, seedHi: number, out: number): void;
  hashPages(pages: number, count: number, out: number, bits: number, seedLo: number, seedHi: number): number;
  hashPageList(
    mem: number,
    indices: number,
    count: number,
    out: number,
    bits: number,
    seedLo: number,
    seedHi: number,
  ): number;
  scanChangedPages(
    pages: number,
    count: number,
    hashes: number,
    bits: number,
    first: number,
    mark: number,
    seedLo: number,
    seedHi: number,
  ): number;
  dedupReset(table: number, bucketCount: number): void;
  dedupApply(
    table: number,
    bucketMask: number,
    reverse: number,
    guest: number,
    base: number,
    pages: number,
    hashes: number,
    count: number,
    out: number,
    lookup: number,
  ): number;
  dedupInvalidate(table: number, reverse: number, base: number, pages: number, count: number): void;
  // assembly/xbzrle.ts
  xbzrleEncode(old: number, cur: number, dst: number, dlen: number): number;
  xbzrleEncodePages(old: number, cur: number, count: number, out: number, lengths: number): number;
  xbzrleCheck(src: number, slen: number): number;
  xbzrleDecode(src: number, slen: number, dst: number): number;
  xbzrleDecodePages(src: number, lengths: number, pages: number, count: number): number;
  // assembly/xbzrle-cache.ts
  xbzrleCacheSavePages(
    tags: number,
    ages: number,
    data: number,
    slots: number,
    ram: number,
    pageIdx: number,
    count: number,
    generation: number,
    lastStage: number,
    scratch: number,
    out: number,
    lengths: number,
    packed: number,
    stats: number,
  ): number;
  // assembly/fake-dirty.ts
  filterUnchangedPages(
    hashes: number,
    known: number,
    pages: number,
    newHashes: number,
    count: number,
    skip: number,
  ): number;
  // assembly/encode-pipeline.ts, assembly/page-applier.ts
  encodePageBatch(ctx: number, ram: number, pages: number, count: number, snapshot: number, out: number): number;
  applyPageRecords(ctx: number, payload: number, len: number): number;
  // assembly/rle.ts
  rleEncode(page: number, dst: number, dlen: number): number;
  rleEncodePages(pages: number, count: number, out: number, lengths: number): number;
  rleCandidates(pages: number, count: number, minUniformWords: number, out: number): number;
  rleCheck(src: number, slen: number): number;
  rleDecode(src: number, slen: number, dst: number): number;
  rleDecodePages(src: number, lengths: number, pages: number, count: number): number;
  // assembly/lz.ts
  lzEncode(page: number, dst: number, dlen: number, table: number): number;
  lzCheck(src: number, slen: number): number;
  lzDecode(src: number, slen: number, dst: number): number;
  // assembly/page-history.ts
  historyRecordWrites(h: number, pages: number, count: number): number;
  historyRecordRound(h: number, bits: number, withDistances: number): number;
  historyMarkSent(h: number, bits: number, round: number): number;
  historyGather(h: number, bits: number, field: number, out: number, capacity: number): number;
  historySumCounts(h: number, bits: number, out: number): number;
  historyFilter(h: number, bits: number, field: number, threshold: number, atLeast: number, out: number): number;
  historyFilterWeighted(h: number, bits: number, weights: number, threshold: number, out: number): number;
}

/** [parameter count, result count] of a kernel function. */
type KernelSignature<F> = F extends (...args: infer P) => infer R
  ? readonly [P["length"], R extends void ? 0 : 1]
  : never;

/**
 * Every function export of the module with its [parameters, results]: the compiler checks
 * it against KernelExports (same names, arity and void-ness), test/kernel/abi.test.ts
 * against the built modules.
 */
export const KERNEL_FUNCTIONS = {
  heapBase: [0, 1],
  // assembly/dirty-bitmap.ts
  bitmapCount: [2, 1],
  bitmapCollect: [4, 1],
  bitmapNextSet: [3, 1],
  bitmapRangeCount: [2, 1],
  bitmapRanges: [4, 1],
  bitmapOr: [3, 0],
  bitmapAnd: [3, 0],
  bitmapAndNot: [3, 0],
  bitmapXor: [3, 0],
  bitmapSetRange: [3, 0],
  bitmapHarvest: [4, 1],
  pagesEqual: [2, 1],
  pageIsZero: [1, 1],
  diffPages: [4, 1],
  zeroPages: [3, 1],
  isZeroPage: [1, 1],
  // assembly/gather.ts
  gatherPages: [5, 1],
  // assembly/pagehash.ts, assembly/dedup-index.ts
  setScratch: [1, 0],
  getScratch: [0, 1],
  xxh3Hash64: [5, 0],
  xxh3Hash128: [5, 0],
  hashPages: [6, 1],
  hashPageList: [7, 1],
  scanChangedPages: [8, 1],
  dedupReset: [2, 0],
  dedupApply: [10, 1],
  dedupInvalidate: [5, 0],
  // assembly/xbzrle.ts, assembly/xbzrle-cache.ts
  xbzrleEncode: [4, 1],
  xbzrleEncodePages: [5, 1],
  xbzrleCheck: [2, 1],
  xbzrleDecode: [3, 1],
  xbzrleDecodePages: [4, 1],
  xbzrleCacheSavePages: [14, 1],
  // assembly/fake-dirty.ts
  filterUnchangedPages: [6, 1],
  // assembly/encode-pipeline.ts, assembly/page-applier.ts
  encodePageBatch: [6, 1],
  applyPageRecords: [3, 1],
  // assembly/rle.ts
  rleEncode: [3, 1],
  rleEncodePages: [4, 1],
  rleCandidates: [4, 1],
  rleCheck: [2, 1],
  rleDecode: [3, 1],
  rleDecodePages: [4, 1],
  // assembly/lz.ts
  lzEncode: [4, 1],
  lzCheck: [2, 1],
  lzDecode: [3, 1],
  // assembly/page-history.ts
  historyRecordWrites: [3, 1],
  historyRecordRound: [3, 1],
  historyMarkSent: [3, 1],
  historyGather: [5, 1],
  historySumCounts: [3, 1],
  historyFilter: [6, 1],
  historyFilterWeighted: [5, 1],
} as const satisfies { readonly [K in keyof KernelExports]: KernelSignature<KernelExports[K]> };
