// The one WASM module: this file only re-exports the kernels (one kernel per file).
export * from "./abi";
export * from "./heap";
export * from "./dirty-bitmap";
export * from "./gather";
export * from "./pagehash";
export * from "./dedup-index";
export * from "./xbzrle";
export * from "./xbzrle-cache";
export * from "./rle";
export * from "./page-history";
