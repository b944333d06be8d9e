import { Worker } from "node:worker_threads";
import type { WasmGuestMemory } from "../../src/memory/wasm-guest-memory.js";

/**
 * A guest in a worker_threads Worker writing into shared guest memory and setting dirty
 * bits with Atomics.or, until paused. `pause()` returns once the guest has stopped writing.
 */
export function startWorkerGuest(mem: WasmGuestMemory, options: { hotPages?: number; seed?: number } = {}) {
  const control = new Int32Array(new SharedArrayBuffer(12)); // [0] stop request, [1] stopped, [2] writes (low bits)
  const worker = new Worker(
    `const { workerData } = require("node:worker_threads");
     const { h, control, hot, seed } = workerData;
     const ram = new Uint8Array(h.buffer, h.ramOffset, h.pageCount * 4096);
     const dirty = new Uint32Array(h.buffer, h.dirtyOffset, h.dirtyWords);
     let x = seed >>> 0;
     const rnd = () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 4294967296; };
     while (Atomics.load(control, 0) === 0) {
       for (let i = 0; i < 64; i++) {
         const page = Math.floor(rnd() * hot);
         const off = Math.floor(rnd() * 4000);
         const len = 1 + Math.floor(rnd() * 96);
         for (let j = 0; j < len; j++) ram[page * 4096 + off + j] = rnd() < 0.3 ? 0 : Math.floor(rnd() * 256);
         Atomics.or(dirty, page >>> 5, 1 << (page & 31));
         Atomics.add(control, 2, 1);
       }
       const t = Date.now(); while (Date.now() - t < 1); // ~64 writes per ms
     }
     Atomics.store(control, 1, 1);
     Atomics.notify(control, 1);`,
    { eval: true, workerData: { h: mem.workerHandle(), control, hot: options.hotPages ?? Math.min(mem.pageCount, 512), seed: options.seed ?? 1 } },
  );
  const exited = new Promise<void>((resolve, reject) => {
    worker.on("exit", () => resolve());
    worker.on("error", reject);
  });
  return {
    /** Stops the guest and waits until it no longer writes. */
    pause(): void {
      Atomics.store(control, 0, 1);
      while (Atomics.load(control, 1) === 0) Atomics.wait(control, 1, 0, 50);
    },
    get writes(): number {
      return Atomics.load(control, 2);
    },
    exited,
    terminate: () => worker.terminate(),
  };
}
