// The guest Worker (see guest.ts for the message diagram): writes pages into the shared
// kernel memory and marks them in the dirty bitmap with Atomics.or, as KVM's dirty log
// would see a vCPU's writes.
import { markPageDirty } from "../../src/kernel/dirty-bitmap.js";
import type { GuestWorkerHandle } from "../../src/memory/wasm-guest-memory.js";
import type { GuestWriter } from "../../src/workload/workload.js";
import { GuestLoop } from "./guest.js";
import { createGuestWorkload, type GuestWorkloadOptions } from "./guest-workload.js";
import { PAGE_SIZE } from "../../src/kernel/abi.js";

let loop: GuestLoop | null = null;

function sharedWriter(h: GuestWorkerHandle): GuestWriter {
  const ram = new Uint8Array(h.buffer, h.ramOffset, h.pageCount * PAGE_SIZE);
  const words = new Uint32Array(h.buffer, h.dirtyOffset, h.dirtyWords);
  return {
    pageCount: h.pageCount,
    write(offset, data) {
      if (offset < 0 || offset + data.length > ram.length)
        throw new RangeError(`guest write of ${data.length} bytes at ${offset} is outside ${ram.length} bytes`);
      ram.set(data, offset);
      if (data.length === 0) return;
      const last = Math.floor((offset + data.length - 1) / PAGE_SIZE);
      for (let p = Math.floor(offset / PAGE_SIZE); p <= last; p++) markPageDirty(words, p);
    },
  };
}

self.onmessage = (
  e: MessageEvent<{
    type: string;
    handle?: GuestWorkerHandle;
    workload?: string;
    options?: GuestWorkloadOptions;
    percent?: number;
  }>,
) => {
  const m = e.data;
  try {
    switch (m.type) {
      case "init": {
        const mem = sharedWriter(m.handle!);
        const w = createGuestWorkload(m.workload!, m.options ?? {});
        w.init(mem);
        loop = new GuestLoop((s) => w.run(s, mem));
        self.postMessage({ type: "ready" });
        break;
      }
      case "start":
        loop?.start();
        break;
      case "pause":
        loop?.pause();
        self.postMessage({ type: "paused" });
        break;
      case "throttle":
        loop?.throttle(m.percent ?? 0);
        break;
    }
  } catch (err) {
    self.postMessage({ type: "error", message: (err as Error).message });
  }
};
