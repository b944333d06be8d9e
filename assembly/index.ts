// The one WASM module: this file only re-exports the kernels (one kernel per file).
export * from "./abi";
export * from "./memory";
export * from "./bitmap";
export * from "./gather";
export * from "./pagehash";
export * from "./dedup";
export * from "./xbzrle";
export * from "./cache";
export * from "./rle";
export * from "./history";
