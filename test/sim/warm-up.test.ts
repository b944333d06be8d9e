// The history a simulated guest has before the migration (src/sim/warm-up.ts): the boot
// (pages not all zero count once), then one sync per period of the warm-up.
import { describe, expect, it } from "vitest";
import { createKernel, DirtyBitmap, PagewireError } from "../../src/index.js";
import { WasmGuestMemory } from "../../src/memory/wasm-guest-memory.js";
import { defaultWarmupSeconds, warmUp } from "../../src/sim/warm-up.js";
import { runScenario } from "../../src/sim/simulator.js";
import { createWorkload } from "../../src/workload/registry.js";
import type { Workload } from "../../src/workload/workload.js";

/** Writes page 1 once at init; then page 2 in every run call, page 3 in the first only. */
class Scripted implements Workload {
  readonly name = "scripted";
  calls = 0;
  init(mem: { write(offset: number, data: Uint8Array): void }) {
    mem.write(1 * 4096 + 7, new Uint8Array([9]));
  }
  run(_seconds: number, mem: { write(offset: number, data: Uint8Array): void }) {
    mem.write(2 * 4096, new Uint8Array([++this.calls]));
    if (this.calls === 1) mem.write(3 * 4096, new Uint8Array([1]));
  }
}

describe("warm-up history", () => {
  it("counts the non-zero pages once (the boot), then each period's dirty pages", async () => {
    const k = await createKernel();
    const mem = new WasmGuestMemory(k, 8);
    const w = new Scripted();
    const guest = { pageCount: 8, write: (o: number, d: Uint8Array) => mem.write(o, d), rewrite: () => {} };
    w.init(guest);
    const r = warmUp(k, mem, guest, w, 2.5, 1000); // periods of 1, 1 and 0.5 s
    expect([r.syncs, r.bootPages, w.calls]).toEqual([4, 1, 3]);
    const all = new DirtyBitmap(k, 8);
    all.setRange(0, 8);
    expect(Array.from(r.history.dirtyCounts(all))).toEqual([0, 1, 3, 1, 0, 0, 0, 0]);
    expect(r.history.dirtiedInRound(3, 2)).toBe(true); // the first period is 3 syncs back
    all.dispose();
    r.history.dispose();
    mem.dispose();
  });

  it("is 255 sync periods by default for history-threshold only", () => {
    expect(defaultWarmupSeconds("history-threshold")).toBe(255);
    expect(defaultWarmupSeconds("history-threshold", 500)).toBe(127.5);
    expect(defaultWarmupSeconds("history-threshold", 0)).toBe(255); // no minimum round: QEMU's 1 s period
    for (const name of ["vanilla", "second-chance", "weighted-hot", undefined])
      expect(defaultWarmupSeconds(name)).toBe(0);
  });

  it("runs before a simulated history-threshold migration unless turned off; a bad length is SIM_WARMUP", async () => {
    const sim = (warmupSeconds?: number) =>
      runScenario({
        workload: createWorkload("idle", { seed: 1 }),
        pageCount: 256,
        bandwidth: 100 * 2 ** 20,
        policy: { selection: "history-threshold", termination: "qemu" },
        warmupSeconds,
        destinationGuest: false,
      });
    const byDefault = await sim();
    expect(byDefault.verified).toBe(true);
    expect(byDefault.warmup).toMatchObject({ seconds: 255, syncs: 256 });
    expect((await sim(0)).warmup).toBeUndefined();
    await expect(sim(-1)).rejects.toSatisfy((e) => e instanceof PagewireError && e.code === "SIM_WARMUP");
  }, 60_000);
});
