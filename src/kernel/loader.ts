import { KernelLoadError } from "../errors.js";
import type { KernelExports } from "./exports.js";
import { Kernel, type KernelArena } from "./kernel.js";
import { compileKernelModule, defaultKernelBuild, wasmUrl, type KernelBuild } from "./wasm-source.js";

export type { KernelBuild } from "./wasm-source.js";
export type { KernelArena } from "./kernel.js";

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

/**
 * createKernel's options for a kernel attached to an arena of another kernel's memory
 * (`kernel.arena(bytes)`): its memory, build and memory kind are the arena's.
 */
export interface ArenaKernelOptions {
  arena: KernelArena;
  shared?: never;
  initialBytes?: never;
  build?: never;
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

/**
 * A new, uncached kernel instance with its own memory (one per migration channel), or,
 * with `{ arena }`, a new instance importing the memory of the kernel that made the arena
 * (in a Worker: post the arena there and call this there). An attached kernel allocates
 * only inside the arena (`ARENA_FULL` when it is full: it never grows memory) and hashes
 * with scratch of its own, so it may run concurrently with the owner and with other
 * attached kernels; instantiating it writes no memory but the module's static data, with
 * the bytes already there.
 */
export async function createKernel(options: LoadKernelOptions | ArenaKernelOptions = {}): Promise<Kernel> {
  if ("arena" in options && options.arena !== undefined) return await attachKernel(options.arena);
  const { shared: sharedOption, build: buildOption, initialBytes } = options as LoadKernelOptions;
  const shared = resolveShared(sharedOption);
  const build = buildOption ?? defaultKernelBuild();
  const module = await kernelModule(shared, build);
  const initial = Math.max(1, Math.ceil((initialBytes ?? 1 << 20) / 65536));
  const memory = new WebAssembly.Memory({ initial, maximum: MAX_WASM_PAGES, shared } as WebAssembly.MemoryDescriptor);
  const instance = await WebAssembly.instantiate(module, kernelImports(memory));
  return new Kernel(instance, memory, shared, build, { module });
}

async function attachKernel(arena: KernelArena): Promise<Kernel> {
  const memory = arena.memory;
  if (!(memory instanceof WebAssembly.Memory))
    throw new KernelLoadError("ARENA_INVALID", "createKernel: arena.memory is not a WebAssembly.Memory");
  const size = memory.buffer.byteLength;
  if (!Number.isInteger(arena.ptr) || !Number.isInteger(arena.bytes) || arena.ptr <= 0 || arena.bytes < 0) {
    throw new KernelLoadError("ARENA_INVALID", `createKernel: arena [${arena.ptr}, +${arena.bytes}) is not a region`);
  }
  if (arena.ptr + arena.bytes > size) {
    throw new KernelLoadError(
      "ARENA_INVALID",
      `createKernel: arena [${arena.ptr}, ${arena.ptr + arena.bytes}) ends past the memory's ${size} bytes`,
    );
  }
  if (arena.build !== "release" && arena.build !== "debug")
    throw new KernelLoadError("ARENA_INVALID", `createKernel: arena.build is "${String(arena.build)}"`);
  const shared = typeof SharedArrayBuffer !== "undefined" && memory.buffer instanceof SharedArrayBuffer;
  // the owner's module when the arena carries it (same static layout for certain)
  const module = arena.module ?? (await kernelModule(shared, arena.build));
  const instance = await WebAssembly.instantiate(module, kernelImports(memory));
  const heapBase = (instance.exports as unknown as KernelExports).heapBase() >>> 0;
  if (arena.ptr < heapBase) {
    throw new KernelLoadError(
      "ARENA_INVALID",
      `createKernel: arena at ${arena.ptr} overlaps the module's static data and scratch (heap base ${heapBase})`,
    );
  }
  return new Kernel(instance, memory, shared, arena.build, { module, arena });
}

/** The compiled module of a build, compiled once per process (or Worker). */
function kernelModule(shared: boolean, build: KernelBuild): Promise<WebAssembly.Module> {
  const key = `${build}:${shared}`;
  let module = modules.get(key);
  if (!module) {
    module = compileKernelModule(wasmUrl(shared, build));
    modules.set(key, module);
    module.catch(() => modules.delete(key));
  }
  return module;
}

function kernelImports(memory: WebAssembly.Memory): WebAssembly.Imports {
  return {
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
  };
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
