import { describe, expect, it } from "vitest";
import { createKernel, DirtyBitmap, KernelMemoryError } from "../../src/index.js";
import { KernelHeap } from "../../src/kernel/heap.js";
import { randInt, rng } from "../support/random.js";

describe("KernelHeap", () => {
  it("random alloc/free keeps regions aligned, disjoint, inside memory, and reuses freed space", () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1024 });
    const heap = new KernelHeap(memory, 100);
    const r = rng(1);
    const live: { ptr: number; bytes: number; align: number }[] = [];
    for (let t = 0; t < 3000; t++) {
      if (live.length > 0 && r() < 0.45) {
        const i = randInt(r, live.length);
        heap.free(live[i]);
        live.splice(i, 1);
      } else {
        const align = 1 << randInt(r, 13);
        const bytes = randInt(r, r() < 0.1 ? 300_000 : 5000);
        const reg = heap.alloc(bytes, align);
        expect(reg.ptr % align).toBe(0);
        expect(reg.ptr).toBeGreaterThanOrEqual(100);
        expect(reg.ptr + reg.bytes).toBeLessThanOrEqual(memory.buffer.byteLength);
        live.push({ ...reg, align });
      }
      const sorted = [...live].sort((a, b) => a.ptr - b.ptr);
      for (let i = 1; i < sorted.length; i++)
        expect(sorted[i].ptr).toBeGreaterThanOrEqual(sorted[i - 1].ptr + sorted[i - 1].bytes);
    }
    for (const reg of live) heap.free(reg);
    expect(heap.allocatedBytes).toBe(0);
    // everything was given back: the next allocation starts at the bottom again
    expect(heap.alloc(16).ptr).toBeLessThan(200);
  });

  it("double free and foreign regions throw REGION_NOT_LIVE", () => {
    const heap = new KernelHeap(new WebAssembly.Memory({ initial: 1 }), 64);
    const reg = heap.alloc(100);
    heap.free(reg);
    expect(() => heap.free(reg)).toThrowError(expect.objectContaining({ code: "REGION_NOT_LIVE" }));
    expect(() => heap.free({ ptr: 12345, bytes: 1 })).toThrowError(KernelMemoryError);
  });

  it("bad sizes and alignments, and allocations past 4 GiB, are typed errors", () => {
    const heap = new KernelHeap(new WebAssembly.Memory({ initial: 1, maximum: 2 }), 64);
    expect(() => heap.alloc(-1)).toThrowError(expect.objectContaining({ code: "ALLOC_SIZE" }));
    expect(() => heap.alloc(10, 3)).toThrowError(expect.objectContaining({ code: "ALLOC_ALIGN" }));
    expect(() => heap.alloc(2 ** 32)).toThrowError(expect.objectContaining({ code: "OUT_OF_MEMORY" }));
    expect(() => heap.alloc(1 << 20)).toThrowError(expect.objectContaining({ code: "OUT_OF_MEMORY" })); // over the memory's maximum
  });
});

describe("kernel memory growth", () => {
  for (const shared of [false, true]) {
    it(`views are re-created after growth (${shared ? "shared" : "private"} memory)`, async () => {
      const k = await createKernel({ shared, initialBytes: 1 << 16 });
      const bm = new DirtyBitmap(k, 5000);
      bm.set(4999);
      const region = k.alloc(64);
      const before = k.bytes(region);
      before.fill(7);
      const big = k.alloc(64 << 20); // forces memory.grow
      if (!shared) expect(before.byteLength).toBe(0); // detached, as the design warns
      expect(Array.from(k.bytes(region).subarray(0, 4))).toEqual([7, 7, 7, 7]);
      bm.set(0);
      expect(Array.from(bm.collect())).toEqual([0, 4999]);
      k.free(big);
      k.free(region);
      bm.dispose();
    });
  }
});

describe("zeroed allocations", () => {
  it("are zero whether the memory is fresh or reused", () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1024 });
    const heap = new KernelHeap(memory, 64);
    const a = heap.alloc(100_000);
    new Uint8Array(memory.buffer, a.ptr, a.bytes).fill(0xee);
    heap.free(a);
    const b = heap.alloc(300_000, 16, true); // overlaps the dirtied bytes and fresh memory
    expect(new Uint8Array(memory.buffer, b.ptr, b.bytes).every((x) => x === 0)).toBe(true);
  });
});
