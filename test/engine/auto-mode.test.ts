import { describe, expect, it } from "vitest";
import { chooseMigrationPlan, type WorkloadMeasurement } from "../../src/engine/auto-mode.js";

const m = (over: Partial<WorkloadMeasurement>): WorkloadMeasurement => ({
  dirtyPagesPerSecond: 0,
  workingSetPages: 0,
  zeroShare: 0.2,
  duplicateShare: 0,
  probeSeconds: 0.2,
  samplePages: 4096,
  ...over,
});
const B = 100e6; // bytes/s → 24414 pages/s
const Bp = B / 4096;

describe("auto mode rule", () => {
  it("no dirty log → stop-and-copy", () => {
    expect(chooseMigrationPlan(m({}), false, B, 300).mode).toBe("stop-and-copy");
  });
  it("a working set that fits the downtime → precopy, vanilla", () => {
    const p = chooseMigrationPlan(
      m({ dirtyPagesPerSecond: 5 * Bp, workingSetPages: Math.floor(Bp * 0.3) }),
      true,
      B,
      300,
    );
    expect([p.mode, p.selection]).toEqual(["precopy", "vanilla"]);
  });
  it("dirty rate ≤ 0.3 B → precopy, vanilla; ≤ 0.8 B → reuse-distance; above → hybrid with 2 rounds", () => {
    const big = 10 * Bp;
    expect(
      chooseMigrationPlan(m({ dirtyPagesPerSecond: 0.29 * Bp, workingSetPages: big }), true, B, 300).selection,
    ).toBe("vanilla");
    const mid = chooseMigrationPlan(m({ dirtyPagesPerSecond: 0.5 * Bp, workingSetPages: big }), true, B, 300);
    expect([mid.mode, mid.selection]).toEqual(["precopy", "reuse-distance"]);
    const hot = chooseMigrationPlan(m({ dirtyPagesPerSecond: 0.9 * Bp, workingSetPages: big }), true, B, 300);
    expect([hot.mode, hot.maxRounds]).toEqual(["hybrid", 2]);
  });
  it("dedup only when the sample shows duplicates; unlimited bandwidth counts as 1 Gbit/s", () => {
    expect(chooseMigrationPlan(m({ duplicateShare: 0.005 }), true, B, 300).codecs.dedup).toBe(false);
    expect(chooseMigrationPlan(m({ duplicateShare: 0.05 }), true, B, 300).codecs.dedup).toBe(true);
    const gbit = 125e6 / 4096;
    expect(
      chooseMigrationPlan(m({ dirtyPagesPerSecond: 0.5 * gbit, workingSetPages: 1e7 }), true, Infinity, 300).selection,
    ).toBe("reuse-distance");
  });
});
