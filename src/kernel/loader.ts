import { KernelLoadError } from "../errors.js";
import { Kernel } from "./kernel.js";
import { compileKernelModule, defaultKernelBuild, wasmUrl, type KernelBuild } from "./wasm-source.js";

export type { KernelBuild } from "./wasm-source.js";

export interface LoadKernelOptions {
  /**
   * Use shared linear memory (a SharedArrayBuffer), so a guest in a Worker can write pages
   * and set dirty bits while the migration thread works. Default: shared where the
   * platform allows it (Node; browsers only when cross-origin isolated).
   */
  shared?: boolean;
  /** Initial kernel memory in bytes (grows on demand up to 4 GiB). Default 1 MiB. */
  initialBytes?: number;
  /**
   * `release` (optimized, assertions compiled out) or `debug` (kernel assertions trap with
   * their message; Node only). Default: the PAGEWIRE_KERNEL environment variable in Node,
   * else `release`.
   */
  build?: KernelBuild;
}

const MAX_WASM_PAGES = 65536;
const modules = new Map<string, Promise<WebAssembly.Module>>();
const cached = new Map<string, Promise<Kernel>>();

/** True where shared WebAssembly memory can be used (and handed to Workers). */
export function sharedMemoryAvailable(): boolean {
  if (typeof SharedArrayBuffer === "undefined") return false;
  const g = globalThis as { crossOriginIsolated?: boolean };
  return g.crossOriginIsolated !== false;
}

/**
 * Loads the kernel once and caches it: later calls with the same `shared` and `build`
 * choices return the same instance. Node reads build/*.wasm from the package; a browser fetches it
 * (bundlers emit it from the `new URL(…, import.meta.url)` reference).
 */
export async function loadKernel(options: LoadKernelOptions = {}): Promise<Kernel> {
  const shared = resolveShared(options.shared);
  const build = options.build ?? defaultKernelBuild();
  const key = `${build}:${shared}`;
  let k = cached.get(key);
  if (!k) {
    k = createKernel({ ...options, shared, build });
    cached.set(key, k);
    k.catch(() => cached.delete(key)); // a failed load can be retried
  }
  return await k;
}

/** A new, uncached kernel instance with its own memory (one per migration channel). */
export async function createKernel(options: LoadKernelOptions = {}): Promise<Kernel> {
  const shared = resolveShared(options.shared);
  const build = options.build ?? defaultKernelBuild();
  const key = `${build}:${shared}`;
  let module = modules.get(key);
  if (!module) {
    module = compileKernelModule(wasmUrl(shared, build));
    modules.set(key, module);
    module.catch(() => modules.delete(key));
  }
  const initial = Math.max(1, Math.ceil((options.initialBytes ?? 1 << 20) / 65536));
  const memory = new WebAssembly.Memory({ initial, maximum: MAX_WASM_PAGES, shared } as WebAssembly.MemoryDescriptor);
  const instance = await WebAssembly.instantiate(await module, {
    env: {
      memory,
      // only debug builds call it: a failed kernel assertion
      abort(msg: number, file: number, line: number, column: number) {
        throw new KernelLoadError(
          "KERNEL_ABORT",
          `pagewire kernel aborted: ${readKernelString(memory, msg)} at ${readKernelString(memory, file)}:${line}:${column}`,
        );
      },
    },
  });
  return new Kernel(instance, memory, shared, build);
}

/** An AssemblyScript string in kernel memory: UTF-16 code units, its byte length in the 4 bytes before it. */
function readKernelString(memory: WebAssembly.Memory, ptr: number): string {
  if (ptr < 4 || ptr + 4 > memory.buffer.byteLength) return `(string at ${ptr})`;
  const bytes = new DataView(memory.buffer).getUint32(ptr - 4, true);
  if (ptr + bytes > memory.buffer.byteLength) return `(string at ${ptr})`;
  let s = "";
  for (let i = 0; i < bytes; i += 2) s += String.fromCharCode(new DataView(memory.buffer).getUint16(ptr + i, true));
  return s;
}

function resolveShared(shared: boolean | undefined): boolean {
  if (shared === undefined) return sharedMemoryAvailable();
  if (shared && !sharedMemoryAvailable()) {
    throw new KernelLoadError(
      "SHARED_UNAVAILABLE",
      "shared kernel memory needs SharedArrayBuffer (in a browser: a cross-origin isolated page)",
    );
  }
  return shared;
}
