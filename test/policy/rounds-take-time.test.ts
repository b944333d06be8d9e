// Rounds take time: a round that holds pages back lasts until the next dirty-log sync
// (minRoundMs after it started), in the engine on the real clock and in the simulator on
// the virtual one; and Xen's to_skip, peeked before each batch, sees the pages the guest
// dirties while a round is sent.
import { describe, expect, it } from "vitest";
import { runPrecopyRounds } from "../../src/engine/precopy-rounds.js";
import { createKernel, createPolicy, DirtyBitmap, PAGE_SIZE, PagewireError, type Kernel } from "../../src/index.js";
import { VirtualClock } from "../../src/sim/virtual-clock.js";
import { runScenario } from "../../src/sim/simulator.js";
import { createWorkload } from "../../src/workload/registry.js";
import { createMigrationPair } from "../support/migration-pair.js";

/** An engine migration of 64 pages where page 5 is written once, right after round 0; the clock time of each harvest. */
async function engineRun(
  minRoundMs: number,
  nonConvergence?: string,
  /** Pages written before harvest i (default: page 5 before the first). */
  writesBefore: number[][] = [[5]],
): Promise<{ harvestsAt: number[]; sentInRound: number[]; decisions: string[] }> {
  const harvestsAt: number[] = [];
  const pair = await createMigrationPair({
    pages: 64,
    kernels: "one",
    policy: {
      selection: "second-chance",
      termination: "max-rounds",
      nonConvergence,
      options: { "second-chance": { minPages: 0 } },
    },
    source: { maxRounds: 5, downtimeLimitMs: 0, minRoundMs },
    dirtyLog: (log) => ({
      ...log,
      harvest: (into) => {
        for (const p of writesBefore[harvestsAt.length] ?? []) pair.src.write(p * PAGE_SIZE, new Uint8Array([1, 2, 3]));
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
  return { harvestsAt, sentInRound, decisions: report.decisions.map((d) => d.decision) };
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

  it("a round in which the policy sent nothing is no sample for force-stop (it would always look non-converging)", async () => {
    // a new page dirtied at each of the first harvests: rounds 1 and 2 send nothing (second
    // chance waits for 2 clean rounds) while the guest dirtied a page in each
    const r = await engineRun(0, "force-stop", [[5], [6], [7]]);
    expect(r.sentInRound.slice(0, 3)).toEqual([64, 0, 0]);
    expect(r.decisions.some((d) => d.startsWith("force-stop:"))).toBe(false);
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

/** The round driver alone, on a virtual clock: each send takes 0.1 s; returns the clock time of each harvest. */
async function driverRun(k: Kernel, selection: string, options: object, minRoundMs?: number): Promise<number[]> {
  const n = 16;
  const clock = new VirtualClock();
  const writes = [[0, 1, 2, 5, 9], [], [], []];
  const at: number[] = [];
  const pending = new DirtyBitmap(k, n);
  pending.setRange(0, n);
  const policy = createPolicy("selection", selection, options);
  try {
    await runPrecopyRounds({
      kernel: k,
      pageCount: n,
      dirtyLog: {
        start() {},
        stop() {},
        harvest(into) {
          into.clearAll();
          for (const p of writes[at.length] ?? []) into.set(p);
          at.push(clock.now());
        },
      },
      selection: policy,
      clock,
      maxRounds: 3,
      minRoundMs,
      downtimeLimitMs: 300,
      pending,
      decisions: [],
      sendRound: () => clock.sleep(0.1).then(() => 0),
      estimateBandwidth: () => PAGE_SIZE, // one page per second
      estimatePageRate: () => 1,
      pagesSent: () => 0,
    });
  } finally {
    policy.dispose();
    pending.dispose();
  }
  return at.map((t) => Math.round(t * 1000) / 1000);
}

describe("the round driver", () => {
  it("waits for the sync after a round that deferred, not after one that sent all or that microwiper ended", async () => {
    const k = await createKernel();
    // second-chance defers the 5 pages written in round 0 for two rounds: each waits until 1 s after its start
    expect(await driverRun(k, "second-chance", { minPages: 0 })).toEqual([0.1, 1.1, 2.1]);
    // microwiper's first stripe already passes 1 page/s: it ends the round, the rest waits for the next one
    expect(await driverRun(k, "microwiper", { stripePages: 4 })).toEqual([0.1, 0.2, 0.3]);
    expect(await driverRun(k, "vanilla", {})).toEqual([0.1, 0.2, 0.3]);
    expect(await driverRun(k, "second-chance", { minPages: 0 }, 0)).toEqual([0.1, 0.2, 0.3]);
    await expect(driverRun(k, "vanilla", {}, -1)).rejects.toThrowError(PagewireError);
  });
});
