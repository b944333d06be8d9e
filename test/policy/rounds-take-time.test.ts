// Rounds take time: a round that holds pages back lasts until the next dirty-log sync
// (minRoundMs after it started), in the engine on the real clock and in the simulator on
// the virtual one; and Xen's to_skip, peeked before each batch, sees the pages the guest
// dirties while a round is sent.
import { describe, expect, it } from "vitest";
import { PAGE_SIZE } from "../../src/index.js";
import { runScenario } from "../../src/sim/simulator.js";
import { createWorkload } from "../../src/workload/registry.js";
import { createMigrationPair } from "../support/migration-pair.js";

/** An engine migration of 64 pages where page 5 is written once, right after round 0; the clock time of each harvest. */
async function engineRun(minRoundMs: number): Promise<{ harvestsAt: number[]; sentInRound: number[] }> {
  const harvestsAt: number[] = [];
  const pair = await createMigrationPair({
    pages: 64,
    kernels: "one",
    policy: { selection: "second-chance", termination: "max-rounds", options: { "second-chance": { minPages: 0 } } },
    source: { maxRounds: 5, downtimeLimitMs: 0, minRoundMs },
    dirtyLog: (log) => ({
      ...log,
      harvest: (into) => {
        if (harvestsAt.length === 0) pair.src.write(5 * PAGE_SIZE, new Uint8Array([1, 2, 3]));
        harvestsAt.push(performance.now() / 1000);
        return log.harvest(into);
      },
    }),
  });
  const { report } = await pair.run();
  expect(report.status).toBe("completed");
  expect(Buffer.compare(pair.dst.bytes(), pair.src.bytes())).toBe(0);
  const sentInRound = report.rounds.filter((r) => r.phase === "precopy").map((r) => r.sent);
  pair.dispose();
  return { harvestsAt, sentInRound };
}

describe("rounds take time", () => {
  it("engine (real clock): 'unmodified for 2 rounds' takes two sync periods, not two instants", async () => {
    const slow = await engineRun(150);
    // round 1 and round 2 defer page 5 (dirty in one of the two latest harvests); round 3 sends it
    expect(slow.sentInRound.slice(0, 4)).toEqual([64, 0, 0, 1]);
    const gaps = slow.harvestsAt.slice(1, 3).map((t, i) => t - slow.harvestsAt[i]);
    for (const g of gaps) expect(g).toBeGreaterThanOrEqual(0.149);
    const fast = await engineRun(0);
    expect(fast.sentInRound.slice(0, 4)).toEqual([64, 0, 0, 1]);
    expect(fast.harvestsAt[2] - fast.harvestsAt[0]).toBeLessThan(0.149 * 2);
  });

  const scenario = (selection: string, minRoundMs?: number, dirtyRate = 2000) =>
    runScenario({
      workload: createWorkload("hot-cold", { seed: 3, dirtyRate }),
      pageCount: 2048,
      bandwidth: 20e6,
      seed: 3,
      maxRounds: 8,
      minRoundMs,
      policy: { selection, termination: "max-rounds", options: { "second-chance": { minPages: 0 } } },
    });

  it("simulator (virtual time): every round that defers lasts at least minRoundMs", async () => {
    const timed = await scenario("second-chance");
    const middle = timed.report.rounds.filter((r) => r.phase === "precopy" && r.round > 0);
    const deferring = middle.filter((r) => r.deferred > 0).length;
    expect(deferring).toBeGreaterThan(2);
    // each deferring round waits for the sync 1 s after it started
    expect(timed.report.totalTime).toBeGreaterThanOrEqual(deferring * 1000);
    const instant = await scenario("second-chance", 0);
    expect(instant.report.totalTime).toBeLessThan(deferring * 1000);
    expect(timed.verified && instant.verified).toBe(true);
  });

  it("simulator: xen-to-skip differs from vanilla when pages are re-dirtied during a round", async () => {
    // a round of several batches: pages written while the first ones go out are skipped in later ones
    const xen = await scenario("xen-to-skip", undefined, 20000);
    const vanilla = await scenario("vanilla", undefined, 20000);
    expect(xen.verified && vanilla.verified).toBe(true);
    const skipped = xen.report.rounds.filter((r) => r.phase === "precopy" && r.round > 0 && r.deferred > 0);
    expect(skipped.length).toBeGreaterThan(0);
    expect(vanilla.report.rounds.every((r) => r.deferred === 0)).toBe(true);
    expect(xen.report.ram.transferred).not.toBe(vanilla.report.ram.transferred);
  });
});
