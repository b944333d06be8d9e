import { KernelLoadError } from "../errors.js";

/**
 * Where the compiled kernel lives. The URLs are static `new URL(literal, import.meta.url)`
 * expressions so that bundlers (Vite, esbuild, webpack) find and emit the .wasm files;
 * the paths hold both from src/kernel/ (tests, tsx) and from dist/kernel/ (the package).
 */
export function wasmUrl(shared: boolean): URL {
  return shared
    ? new URL("../../build/pagewire-shared.wasm", import.meta.url)
    : new URL("../../build/pagewire.wasm", import.meta.url);
}

/**
 * Compiles the kernel module. Node reads the file (fetch cannot read file: URLs); a
 * browser streams it. `node:fs` is imported dynamically through a variable, so the
 * browser path carries no Node-only import and bundlers leave it alone.
 */
export async function compileKernelModule(url: URL): Promise<WebAssembly.Module> {
  try {
    if (url.protocol === "file:") {
      const fsName = "node:fs/promises";
      const fs = (await import(/* @vite-ignore */ fsName)) as typeof import("node:fs/promises");
      return await WebAssembly.compile(await fs.readFile(url));
    }
    const response = await fetch(url);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    if (typeof WebAssembly.compileStreaming === "function" && response.headers.get("content-type") === "application/wasm") {
      return await WebAssembly.compileStreaming(response);
    }
    return await WebAssembly.compile(await response.arrayBuffer());
  } catch (cause) {
    throw new KernelLoadError("WASM_LOAD", `cannot load the pagewire kernel from ${url.href}: ${(cause as Error).message} (run \`npm run build\` first?)`, { cause });
  }
}
