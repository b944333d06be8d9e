// pagewire: the public API. See README.md and ../shared/DESIGN.md.
export { loadKernel, createKernel, sharedMemoryAvailable, type LoadKernelOptions } from "./kernel/loader.js";
export { Kernel, PAGE_SIZE } from "./kernel/kernel.js";
export type { KernelRegion } from "./kernel/heap.js";
export type { KernelExports } from "./kernel/exports.js";
export { DirtyBitmap, markPageDirty, type DirtyBitmapOptions, type PageRange } from "./kernel/dirty-bitmap.js";
export { PagewireError, KernelLoadError, KernelMemoryError, PagewireRangeError } from "./errors.js";
export { PageHistory, HISTORY_ROUNDS, MAX_DIRTY_COUNT, type PageHistoryOptions, type RecordRoundOptions } from "./policy/page-history.js";
