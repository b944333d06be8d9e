import { describe, expect, it } from "vitest";
import { createKernel } from "../../src/index.js";
import { WasmGuestMemory } from "../../src/memory/wasm-guest-memory.js";
import { createWorkload, listWorkloads } from "../../src/workload/registry.js";
import { ZipfSampler, seededRandom } from "../../src/util/random.js";

describe("workloads", () => {
  it("lists the seven workloads of the issue", () => {
    expect(listWorkloads().map((w) => w.name)).toEqual([
      "idle",
      "cpu",
      "working-set",
      "hot-cold",
      "sequential",
      "net-ring",
      "write-storm",
    ]);
  });

  for (const { name } of listWorkloads()) {
    it(`${name}: same seed, same bytes; another seed, other bytes; writes mark pages dirty`, async () => {
      const k = await createKernel();
      const pages = 2048;
      const run = (seed: number) => {
        const mem = new WasmGuestMemory(k, pages);
        const w = createWorkload(name, { seed, dirtyRate: 3000 });
        w.init(mem);
        mem.dirty.clearAll();
        w.run(0.25, mem);
        w.run(0.25, mem);
        const out = { bytes: mem.bytes().slice(), dirty: mem.dirty.count() };
        mem.dispose();
        return out;
      };
      const a = run(7);
      const b = run(7);
      const c = run(8);
      expect(Buffer.compare(a.bytes, b.bytes)).toBe(0);
      expect(a.dirty).toBe(b.dirty);
      expect(a.dirty).toBeGreaterThan(0);
      expect(Buffer.compare(a.bytes, c.bytes)).not.toBe(0);
    });
  }

  it("working-set writes stay inside the working set and follow the rate", async () => {
    const k = await createKernel();
    const mem = new WasmGuestMemory(k, 4096);
    const w = createWorkload("working-set", { seed: 1, dirtyRate: 1000, workingSetShare: 0.1 });
    w.init(mem);
    mem.dirty.clearAll();
    w.run(2, mem);
    expect((w as unknown as { writes: number }).writes).toBe(2000);
    expect(mem.dirty.count()).toBeLessThanOrEqual(410);
    mem.dispose();
  });

  it("fake-dirty writes leave the content unchanged", async () => {
    const k = await createKernel();
    const mem = new WasmGuestMemory(k, 1024);
    const w = createWorkload("working-set", { seed: 3, dirtyRate: 2000, fakeDirtyShare: 1, workingSetShare: 0.5 });
    w.init(mem);
    const before = mem.bytes().slice();
    mem.dirty.clearAll();
    w.run(1, mem);
    expect(mem.dirty.count()).toBeGreaterThan(100);
    expect(Buffer.compare(mem.bytes(), before)).toBe(0);
    mem.dispose();
  });

  it("rejects bad options with a typed error", () => {
    expect(() => createWorkload("nope")).toThrow(expect.objectContaining({ code: "UNKNOWN_WORKLOAD" }));
    expect(() => createWorkload("idle", { writeSize: 0 })).toThrow(
      expect.objectContaining({ code: "WORKLOAD_OPTION" }),
    );
    expect(() => createWorkload("idle", { fakeDirtyShare: 2 })).toThrow(
      expect.objectContaining({ code: "WORKLOAD_OPTION" }),
    );
  });

  it("Zipf rank 0 is the most frequent", () => {
    const z = new ZipfSampler(1000, 1.0);
    const r = seededRandom(5);
    const counts = new Array(1000).fill(0);
    for (let i = 0; i < 20000; i++) counts[z.sample(r)]++;
    expect(counts[0]).toBeGreaterThan(counts[10]);
    expect(counts[0] / 20000).toBeGreaterThan(0.1);
  });
});
