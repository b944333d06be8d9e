import { KernelLoadError } from "../errors.js";

/**
 * Which compilation of the kernel to load: `release` (optimized, assertions compiled out:
 * what the package ships for use) or `debug` (assertions on, function names kept: what
 * the kernel tests run). See asconfig.json.
 */
export type KernelBuild = "release" | "debug";

// Debug builds are named through a variable, not a `new URL(literal, …)`, so bundlers do
// not emit them next to the release builds: only Node loads them.
const DEBUG_FILES = { private: "../../build/pagewire-debug.wasm", shared: "../../build/pagewire-debug-shared.wasm" };

/**
 * Where the compiled kernel lives. The release URLs are static `new URL(literal,
 * import.meta.url)` expressions so that bundlers (Vite, esbuild, webpack) find and emit
 * the .wasm files; the paths hold both from src/kernel/ (tests, tsx) and from
 * dist/kernel/ (the package).
 */
export function wasmUrl(shared: boolean, build: KernelBuild = "release"): URL {
  if (build === "debug") return new URL(shared ? DEBUG_FILES.shared : DEBUG_FILES.private, import.meta.url);
  return shared
    ? new URL("../../build/pagewire-shared.wasm", import.meta.url)
    : new URL("../../build/pagewire.wasm", import.meta.url);
}

/**
 * The build named by the PAGEWIRE_KERNEL environment variable (Node only; `release` when
 * unset or outside Node). Throws `KERNEL_BUILD` for any other value.
 */
export function defaultKernelBuild(): KernelBuild {
  const g = globalThis as { process?: { env?: Record<string, string | undefined> } };
  const name = g.process?.env?.PAGEWIRE_KERNEL;
  if (name === undefined || name === "" || name === "release") return "release";
  if (name === "debug") return "debug";
  throw new KernelLoadError("KERNEL_BUILD", `PAGEWIRE_KERNEL must be "release" or "debug", got "${name}"`);
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
    if (
      typeof WebAssembly.compileStreaming === "function" &&
      response.headers.get("content-type") === "application/wasm"
    ) {
      return await WebAssembly.compileStreaming(response);
    }
    return await WebAssembly.compile(await response.arrayBuffer());
  } catch (cause) {
    throw new KernelLoadError(
      "WASM_LOAD",
      `cannot load the pagewire kernel from ${url.href}: ${(cause as Error).message} (run \`npm run build\` first?)`,
      { cause },
    );
  }
}
