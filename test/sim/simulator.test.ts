import { describe, expect, it } from "vitest";
import { runScenario } from "../../src/sim/simulator.js";
import { VirtualClock } from "../../src/sim/virtual-clock.js";
import { createWorkload } from "../../src/workload/registry.js";
import { PRESETS } from "../../src/sim/presets.js";

describe("virtual clock", () => {
  it("fires timers in time order and advances only through them", async () => {
    const c = new VirtualClock();
    const seen: string[] = [];
    const steps: Array<[number, number]> = [];
    c.onAdvance = (a, b) => steps.push([a, b]);
    await Promise.all([
      c.sleep(2).then(() => seen.push(`b${c.now()}`)),
      c.sleep(1).then(() => seen.push(`a${c.now()}`)),
      c.sleep(1).then(() => seen.push(`a2${c.now()}`)),
    ]);
    expect(seen).toEqual(["a1", "a21", "b2"]);
    expect(steps).toEqual([
      [0, 1],
      [1, 2],
    ]);
  });
});

describe("simulator", () => {
  const scenario = (seed: number) =>
    runScenario({
      workload: createWorkload("working-set", { seed, dirtyRate: 4000 }),
      pageCount: 8192,
      bandwidth: 20e6,
      seed,
      latency: 0.001,
      jitter: 0.0005,
      codecs: PRESETS[1].codecs,
      policy: PRESETS[1].policy,
    });

  it("two runs with one seed give identical reports (bit for bit); another seed differs", async () => {
    const a = await scenario(11);
    const b = await scenario(11);
    const c = await scenario(12);
    expect(a.verified && b.verified && c.verified).toBe(true);
    expect(JSON.stringify(a.report.toJSON())).toBe(JSON.stringify(b.report.toJSON()));
    expect(a.timeline).toEqual(b.timeline);
    expect(JSON.stringify(a.report.toJSON())).not.toBe(JSON.stringify(c.report.toJSON()));
    expect(a.report.rounds.length).toBeGreaterThan(1);
  });

  it("the link bandwidth bounds the throughput in virtual time", async () => {
    const r = await runScenario({
      workload: createWorkload("idle", { seed: 1 }),
      pageCount: 4096,
      bandwidth: 10e6,
      seed: 1,
      cpu: "none",
      codecs: { zero: false, unchanged: false, dedup: false, xbzrle: false, rle: false, lz: false },
    });
    const seconds = r.report.totalTime / 1000;
    expect(r.report.ram.transferred / seconds).toBeLessThanOrEqual(10e6 * 1.001);
    expect(r.report.ram.transferred / seconds).toBeGreaterThan(10e6 * 0.9);
    expect(r.verified).toBe(true);
  });

  it("latency delays the handshake; measured CPU time is charged and flagged", async () => {
    const r = await runScenario({
      workload: createWorkload("cpu", { seed: 1 }),
      pageCount: 1024,
      bandwidth: 50e6,
      latency: 0.01,
      seed: 1,
      cpu: "measure",
    });
    expect(r.report.setupTime).toBeGreaterThanOrEqual(20);
    expect(r.cpuMode).toBe("measure");
    expect(r.cpuSeconds).toBeGreaterThan(0);
    expect(r.verified).toBe(true);
  });

  for (const mode of ["postcopy", "stop-and-copy"] as const) {
    it(`${mode} completes and verifies in virtual time`, async () => {
      const r = await runScenario({
        workload: createWorkload("hot-cold", { seed: 2, dirtyRate: 2000 }),
        pageCount: 2048,
        bandwidth: 20e6,
        seed: 2,
        mode,
      });
      expect(r.report.status).toBe("completed");
      expect(r.report.mode).toBe(mode);
      expect(r.verified).toBe(true);
    });
  }

  it("hybrid with fake-dirty writes: pages unchanged since pre-copy are still sent in post-copy (regression)", async () => {
    const r = await runScenario({
      workload: createWorkload("working-set", { seed: 3, dirtyRate: 3000, fakeDirtyShare: 0.6, workingSetShare: 0.3 }),
      pageCount: 2048,
      bandwidth: 20e6,
      seed: 3,
      mode: "hybrid",
      maxRounds: 3,
      codecs: PRESETS[1].codecs,
      policy: PRESETS[1].policy,
    });
    expect(r.report.status).toBe("completed");
    expect(r.report.mode).toBe("hybrid");
    expect(r.report.rounds.at(-1)!.phase).toBe("postcopy");
    expect(r.report.rounds.at(-1)!.skipped).toBe(0);
    expect(r.verified).toBe(true);
  });

  it("write-storm does not converge at the given bandwidth: the qemu rule never stops it", async () => {
    const r = await runScenario({
      workload: createWorkload("write-storm", { seed: 1, dirtyRate: 3000 }),
      pageCount: 4096,
      bandwidth: 8e6,
      seed: 1,
      maxRounds: 5,
      policy: { selection: "vanilla", termination: "qemu", nonConvergence: "force-stop" },
    });
    expect(r.verified).toBe(true);
    const last = r.report.decisions.at(-1)!;
    expect(last.decision).not.toMatch(/^qemu:/);
    expect(last.kind === "non-convergence" || /maxRounds/.test(last.decision)).toBe(true);
  });
});
