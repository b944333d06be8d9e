// The one WASM module: this file only re-exports the kernels (one kernel per file).
export * from "./memory";
export * from "./bitmap";
export * from "./history";
