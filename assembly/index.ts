// The one WASM module: this file only re-exports the kernels (one kernel per file). Files
// that also export helpers for other kernels (inlined there) are re-exported by name.
export * from "./abi";
export * from "./heap";
export * from "./dirty-bitmap";
export * from "./gather";
export { xxh3Hash64, xxh3Hash128, hashPages, hashPageList, scanChangedPages, setScratch, getScratch } from "./pagehash";
export { dedupReset, dedupApply, dedupInvalidate } from "./dedup-index";
export { filterUnchangedPages } from "./fake-dirty";
export * from "./xbzrle";
export { xbzrleCacheSavePages } from "./xbzrle-cache";
export { rleEncode, rleEncodePages, rleCandidates, rleCheck, rleDecode, rleDecodePages } from "./rle";
export { lzEncode, lzCheck, lzDecode } from "./lz";
export { encodePageBatch } from "./encode-pipeline";
export { applyPageRecords } from "./page-applier";
export * from "./page-history";
