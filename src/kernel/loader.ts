import { KernelLoadError } from "../errors.js";
import { Kernel } from "./kernel.js";
import { compileKernelModule, wasmUrl } from "./wasm-source.js";

export interface LoadKernelOptions {
  /**
   * Use shared linear memory (a SharedArrayBuffer), so a guest in a Worker can write pages
   * and set dirty bits while the migration thread works. Default: shared where the
   * platform allows it (Node; browsers only when cross-origin isolated).
   */
  shared?: boolean;
  /** Initial kernel memory in bytes (grows on demand up to 4 GiB). Default 1 MiB. */
  initialBytes?: number;
}

const MAX_WASM_PAGES = 65536;
const modules = new Map<boolean, Promise<WebAssembly.Module>>();
const cached = new Map<boolean, Promise<Kernel>>();

/** True where shared WebAssembly memory can be used (and handed to Workers). */
export function sharedMemoryAvailable(): boolean {
  if (typeof SharedArrayBuffer === "undefined") return false;
  const g = globalThis as { crossOriginIsolated?: boolean };
  return g.crossOriginIsolated !== false;
}

/**
 * Loads the kernel once and caches it: later calls with the same `shared` choice return
 * the same instance. Node reads build/*.wasm from the package; a browser fetches it
 * (bundlers emit it from the `new URL(…, import.meta.url)` reference).
 */
export async function loadKernel(options: LoadKernelOptions = {}): Promise<Kernel> {
  const shared = resolveShared(options.shared);
  let k = cached.get(shared);
  if (!k) {
    k = createKernel({ ...options, shared });
    cached.set(shared, k);
    k.catch(() => cached.delete(shared)); // a failed load can be retried
  }
  return await k;
}

/** A new, uncached kernel instance with its own memory (one per migration channel). */
export async function createKernel(options: LoadKernelOptions = {}): Promise<Kernel> {
  const shared = resolveShared(options.shared);
  let module = modules.get(shared);
  if (!module) {
    module = compileKernelModule(wasmUrl(shared));
    modules.set(shared, module);
    module.catch(() => modules.delete(shared));
  }
  const initial = Math.max(1, Math.ceil((options.initialBytes ?? 1 << 20) / 65536));
  const memory = new WebAssembly.Memory({ initial, maximum: MAX_WASM_PAGES, shared } as WebAssembly.MemoryDescriptor);
  const instance = await WebAssembly.instantiate(await module, {
    env: {
      memory,
      abort(msg: number, file: number, line: number, column: number) {
        throw new KernelLoadError("KERNEL_ABORT", `pagewire kernel aborted at ${line}:${column} (message at ${msg}, file at ${file})`);
      },
    },
  });
  return new Kernel(instance, memory, shared);
}

function resolveShared(shared: boolean | undefined): boolean {
  if (shared === undefined) return sharedMemoryAvailable();
  if (shared && !sharedMemoryAvailable()) {
    throw new KernelLoadError("SHARED_UNAVAILABLE", "shared kernel memory needs SharedArrayBuffer (in a browser: a cross-origin isolated page)");
  }
  return shared;
}
