import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { WasmGuestMemory } from "../../src/memory/wasm-guest-memory.js";

// the worker is plain JavaScript: it takes the PRNG from the build (src/util/random.ts)
const RANDOM_JS = pathToFileURL(fileURLToPath(new URL("../../dist/util/random.js", import.meta.url))).href;

export interface WorkerGuestOptions {
  /** Pages 0..hotPages-1 are written (default min(pageCount, 512)). */
  hotPages?: number;
  seed?: number;
  /** The guest stops writing (but stays "running" until paused) after this many writes (default: no limit). */
  maxWrites?: number;
  /** `running` resolves once this many writes are done (default 200). */
  startWrites?: number;
}

/**
 * A guest in a worker_threads Worker writing into shared guest memory and setting dirty
 * bits with Atomics.or, until paused. `pause()` returns once the guest has stopped writing.
 *
 * This guest runs in real time, concurrently with the engine (that is its point), so which
 * write lands in which round depends on the machine. What it writes does not: pages,
 * offsets, lengths and bytes come from seededRandom(seed), in batches of 64 writes at most
 * once per millisecond, at most `maxWrites` in all (tests set it; a benchmark may not).
 */
export function startWorkerGuest(mem: WasmGuestMemory, options: WorkerGuestOptions = {}) {
  const control = new Int32Array(new SharedArrayBuffer(12)); // [0] stop request, [1] stopped, [2] writes (low bits)
  const worker = new Worker(
    `const { workerData, parentPort } = require("node:worker_threads");
     const { h, control, hot, seed, maxWrites, startWrites, randomJs } = workerData;
     import(randomJs).then(({ seededRandom }) => {
       const ram = new Uint8Array(h.buffer, h.ramOffset, h.pageCount * 4096);
       const dirty = new Uint32Array(h.buffer, h.dirtyOffset, h.dirtyWords);
       const rnd = seededRandom(seed);
       let writes = 0;
       while (Atomics.load(control, 0) === 0 && writes < maxWrites) {
         for (let i = 0; i < 64 && writes < maxWrites; i++) {
           const page = Math.floor(rnd() * hot);
           const off = Math.floor(rnd() * 4000);
           const len = 1 + Math.floor(rnd() * 96);
           for (let j = 0; j < len; j++) ram[page * 4096 + off + j] = rnd() < 0.3 ? 0 : Math.floor(rnd() * 256);
           Atomics.or(dirty, page >>> 5, 1 << (page & 31));
           Atomics.add(control, 2, 1);
           if (++writes === startWrites) parentPort.postMessage("running");
         }
         const t = Date.now(); while (Date.now() - t < 1); // pace: about 64 writes per ms
       }
       if (writes < startWrites) parentPort.postMessage("running");
       while (Atomics.load(control, 0) === 0) Atomics.wait(control, 0, 0); // written out: idle until paused
       Atomics.store(control, 1, 1);
       Atomics.notify(control, 1);
     });`,
    {
      eval: true,
      workerData: {
        h: mem.workerHandle(),
        control,
        hot: options.hotPages ?? Math.min(mem.pageCount, 512),
        seed: options.seed ?? 1,
        maxWrites: options.maxWrites ?? Infinity,
        startWrites: options.startWrites ?? 200,
        randomJs: RANDOM_JS,
      },
    },
  );
  const exited = new Promise<void>((resolve, reject) => {
    worker.on("exit", () => resolve());
    worker.on("error", reject);
  });
  const running = new Promise<void>((resolve, reject) => {
    worker.once("message", () => resolve());
    exited.then(() => reject(new Error("worker guest exited before it ran")), reject);
  });
  running.catch(() => {}); // a test that never awaits it still sees the failure through `exited`
  return {
    /** Resolves once the guest made `startWrites` writes. */
    running,
    /** Stops the guest and waits until it no longer writes. */
    pause(): void {
      Atomics.store(control, 0, 1);
      Atomics.notify(control, 0);
      while (Atomics.load(control, 1) === 0) Atomics.wait(control, 1, 0, 50);
    },
    get writes(): number {
      return Atomics.load(control, 2);
    },
    exited,
    terminate: () => worker.terminate(),
  };
}
