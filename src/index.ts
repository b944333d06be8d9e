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
