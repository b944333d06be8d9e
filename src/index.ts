// pagewire: the public API. See README.md and ../shared/DESIGN.md.
export { loadKernel, createKernel, sharedMemoryAvailable, type LoadKernelOptions } from "./kernel/loader.js";
export { Kernel, PAGE_SIZE } from "./kernel/kernel.js";
export type { KernelRegion } from "./kernel/heap.js";
export type { KernelExports } from "./kernel/exports.js";
export { DirtyBitmap, markPageDirty, type DirtyBitmapOptions, type PageRange } from "./kernel/dirty-bitmap.js";
export { PagewireError, KernelLoadError, KernelMemoryError, PagewireRangeError } from "./errors.js";
export { hashBytes64, hashBytes128, hashPages, hashPageList, randomSeed, splitSeed, type Hash128, type HashPagesOptions } from "./codec/pagehash.js";
export { DedupIndex, DedupError, DEDUP_NONE, type DedupIndexOptions, type DedupStats, type PageRef } from "./codec/dedup-index.js";
export { FakeDirtyFilter, type FakeDirtyFilterOptions, type FakeDirtyResult } from "./codec/fake-dirty.js";
export { HashDirtyLog, type HashDirtyLogOptions, type ScannedMemory } from "./memory/hash-dirty-log.js";
export { DirtyRateSampler, estimateFromSample, measureDirtyRate, samplePages, type DirtyRateEstimate, type DirtyRateOptions } from "./memory/dirty-rate.js";
export { XbzrleError, XBZRLE_OVERFLOW, encodeXbzrle, decodeXbzrle, encodeXbzrlePages, decodeXbzrlePages } from "./codec/xbzrle.js";
export { RleError, encodeRle, decodeRle, encodeRlePages, decodeRlePages } from "./codec/rle.js";
export {
  XbzrleCache, DEFAULT_XBZRLE_CACHE_BYTES, CACHED_PAGE_LIFETIME, SAVE_MISS_INSERTED, SAVE_MISS_NOT_INSERTED,
  type XbzrleCacheOptions, type XbzrleCacheStats,
} from "./codec/xbzrle-cache.js";
