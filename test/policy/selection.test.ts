import { beforeAll, describe, expect, it } from "vitest";
import {
  createPolicy,
  DirtyBitmap,
  listPolicies,
  loadKernel,
  PageHistory,
  PagewireError,
  simulatePolicyRounds,
  type Kernel,
  type SimulationResult,
} from "../../src/index.js";
import { randInt, rng } from "../support/random.js";

let k: Kernel;
beforeAll(async () => {
  k = await loadKernel();
});

/** "sent/deferred" per round, the stop-and-copy round last. */
function table(r: SimulationResult): string[] {
  return r.rounds.map((x) => `${x.sent.join(",")}/${x.deferred.join(",")}`);
}

// 8 pages; W[r] = pages the guest writes during round r. Page 0 is hot, 1 warm, 2..4 written
// once or twice. The peek (Xen to_skip) sees W[r] while round r is sent.
const W = [[0, 1, 2], [0, 1, 3], [0, 4], [0], [0], [0]];

async function run(
  name: string,
  options: object = {},
  writes = W,
  pageCount = 8,
  extra: object = {},
): Promise<SimulationResult> {
  const policy = createPolicy("selection", name, options);
  const r = await simulatePolicyRounds({ kernel: k, pageCount, writes, selection: policy, ...extra });
  policy.dispose();
  expect(r.lost).toEqual([]);
  expect(r.deferredAtStop).toBe(0);
  return r;
}

describe("selection policies on a hand-built dirty sequence (sent/deferred per round)", () => {
  it("vanilla sends every candidate", async () => {
    expect(table(await run("vanilla"))).toEqual(["0,1,2,3,4,5,6,7/", "0,1,2/", "0,1,3/", "0,4/", "0/", "0/", "0/"]);
  });

  it("xen-to-skip skips pages re-dirtied during the round, not in the first round", async () => {
    // r1: candidates 0,1,2; 0 and 1 are written again during r1 → skipped
    expect(table(await run("xen-to-skip"))).toEqual(["0,1,2,3,4,5,6,7/", "2/0,1", "1,3/0", "4/0", "/0", "/0", "0/"]);
  });

  it("xen-to-skip without a peek is vanilla", async () => {
    expect(table(await run("xen-to-skip", {}, W, 8, { peek: false }))).toEqual(table(await run("vanilla")));
  });

  it("reuse-distance sends pages whose distance ≥ the previous round's dirty count", async () => {
    // r2: distances after round {0,1,3}: d(0)=2, d(1)=2, 3 none; threshold |{0,1,3}| = 3 → only 3
    // r3: after {0,4}: d(0)=2, d(1)=2 (unchanged), 4 none; threshold 2 → 1 and 4; 0 is in to_skip
    expect(table(await run("reuse-distance"))).toEqual([
      "0,1,2,3,4,5,6,7/",
      "2/0,1",
      "3/0,1",
      "1,4/0",
      "/0",
      "/0",
      "0/",
    ]);
  });

  it("dpdt delays pages dirty in two consecutive rounds to the last round", async () => {
    expect(table(await run("dpdt"))).toEqual(["0,1,2,3,4,5,6,7/", "0,1,2/", "3/0,1", "4/0,1", "/0,1", "/0,1", "0,1/"]);
  });

  it("second-chance sends a page once it is clean for two rounds", async () => {
    expect(table(await run("second-chance", { minPages: 0 }))).toEqual([
      "0,1,2,3,4,5,6,7/",
      "/0,1,2",
      "/0,1,2,3",
      "2/0,1,3,4",
      "1,3/0,4",
      "4/0",
      "0/",
    ]);
  });

  it("second-chance switches to plain pre-copy: < 55 pages, or after maxRounds", async () => {
    const few = await run("second-chance");
    expect(table(few)).toEqual(table(await run("vanilla")));
    expect(few.rounds[0].note).toBe("switched to plain pre-copy");
    expect(table(await run("second-chance", { minPages: 0, maxRounds: 2 }))).toEqual([
      "0,1,2,3,4,5,6,7/",
      "/0,1,2",
      "0,1,2,3/",
      "0,4/",
      "0/",
      "0/",
      "0/",
    ]);
  });

  it("second-chance switches once more than 2.5× the guest has been sent", async () => {
    // 4 pages, all written every round: 4 + 4 + 4 = 12 > 10 sent by round 3 under plain pre-copy
    const all = [
      [0, 1, 2, 3],
      [0, 1, 2, 3],
      [0, 1, 2, 3],
      [0, 1, 2, 3],
      [0, 1, 2, 3],
    ];
    const r = await run("second-chance", { minPages: 0, maxSentFactor: 0.5 }, all, 4);
    // round 0 sends 4 pages (> 0.5 × 4), so round 1 already sends everything
    expect(table(r)).toEqual(["0,1,2,3/", "0,1,2,3/", "0,1,2,3/", "0,1,2,3/", "0,1,2,3/", "0,1,2,3/"]);
  });

  it("history-threshold: first round sends unmodified pages, then below-average and clean for 3 rounds", async () => {
    // r4: counts 0:4 1:2 2:1 3:1 4:1, average 1.8 → 2,3,4; clean for 3 rounds: only 2
    // r5: candidates 0,1,3,4 with counts 5,2,1,1, average 2.25 → 1,3,4; 4 was dirty 2 rounds ago
    expect(table(await run("history-threshold"))).toEqual([
      "3,4,5,6,7/0,1,2",
      "/0,1,2",
      "/0,1,2,3",
      "/0,1,2,3,4",
      "2/0,1,3,4",
      "1,3/0,4",
      "0,4/",
    ]);
  });

  it("weighted-hot defers pages with an age-weighted dirty rate ≥ 0.7", async () => {
    // r2: 0 and 1 dirty in both latest rounds: 1/2 + 1/4 = 0.75 → hot; r3: 1 only 1 and 2 rounds ago: 0.375
    expect(table(await run("weighted-hot"))).toEqual([
      "0,1,2,3,4,5,6,7/",
      "0,1,2/",
      "3/0,1",
      "1,4/0",
      "/0",
      "/0",
      "0/",
    ]);
  });

  it("block-ordered defers blocks rewritten in bulk and sends the coldest blocks first", async () => {
    // blocks of 4 pages; r1 heat: b0 3/4 (hot), b1 1, b2 1. r2 heat: b0 4/4 (hot), b1 2/4, b2 1, b3 1
    const writes = [[0, 1, 2, 5, 9], [0, 1, 2, 3, 4, 5, 9, 14], [5]];
    const r = await run("block-ordered", { blockPages: 4 }, writes, 16);
    expect(table(r)).toEqual(["0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15/", "5,9/0,1,2", "4,5,9,14/0,1,2,3", "0,1,2,3,5/"]);
    expect(r.rounds[1].order).toEqual([5, 9]);
    expect(r.rounds[2].order).toEqual([9, 14, 4, 5]);
  });

  it("microwiper sends slow stripes first and ends the round when their rewrite rate exceeds the bandwidth", async () => {
    // stripes of 4; bandwidth 2 pages/s; r1 rates s0 3, s1 1, s2 1 → s1, s2 (acc 2), s0 would make 5
    // r2 rates s0 1, s1 1, s2 1, s3 2 → s0, s1 (acc 2), s2 would make 3
    const writes = [[0, 1, 2, 5, 9], [0, 4, 8, 12, 13], []];
    const r = await run("microwiper", { stripePages: 4 }, writes, 16, { bandwidthPagesPerRound: 2 });
    expect(table(r)).toEqual(["0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15/", "5,9/0,1,2", "0,1,2,4/8,12,13", "8,12,13/"]);
    expect(r.rounds[1].order).toEqual([5, 9]);
    expect(r.rounds[2].order).toEqual([0, 1, 2, 4]);
    // no bandwidth estimate: everything, still slowest stripe first
    const u = await run("microwiper", { stripePages: 4 }, writes, 16);
    expect(u.rounds[1].order).toEqual([5, 9, 0, 1, 2]);
    expect(u.rounds[1].deferred).toEqual([]);
  });

  it("rejects output bitmaps of another size", async () => {
    const h = new PageHistory(k, 8);
    const d = new DirtyBitmap(k, 8),
      s = new DirtyBitmap(k, 9),
      f = new DirtyBitmap(k, 8);
    const p = createPolicy("selection", "vanilla");
    expect(() =>
      p.select(
        { round: 0, dirty: d, history: h, firstRound: true, lastRound: false, guestPages: 8, pagesSent: 0 },
        { send: s, defer: f },
      ),
    ).toThrowError(PagewireError);
    h.dispose();
  });
});

describe("no selection policy can lose a page (random sequences)", () => {
  const selections = listPolicies("selection").map((p) => p.name);
  const terminations = [undefined, ...listPolicies("termination").map((p) => p.name)];

  for (const name of selections) {
    it(`${name}: every page's last content is sent, send ∪ defer = candidates each round`, async () => {
      for (let seed = 1; seed <= 12; seed++) {
        const r = rng(seed * 7919 + name.length);
        const n = 1 + randInt(r, 300);
        const rounds = randInt(r, 14);
        const hot = 1 + randInt(r, n);
        const density = r() * 0.6;
        const writes = Array.from({ length: rounds }, () =>
          Array.from({ length: Math.round(n * density * r()) }, () => (r() < 0.7 ? randInt(r, hot) : randInt(r, n))),
        );
        const term = terminations[randInt(r, terminations.length)];
        const policy = createPolicy(
          "selection",
          name,
          r() < 0.5 ? {} : { minPages: 0, stripePages: 1 + randInt(r, 70), blockPages: 1 + randInt(r, 70) },
        );
        const res = await simulatePolicyRounds({
          kernel: k,
          pageCount: n,
          writes,
          selection: policy,
          peek: r() < 0.7,
          termination: term ? createPolicy("termination", term, { maxRounds: 1 + randInt(r, 12) }) : undefined,
          bandwidthPagesPerRound: r() < 0.5 ? 0 : randInt(r, n),
        });
        policy.dispose();
        expect(res.lost, `seed ${seed}`).toEqual([]);
        expect(res.deferredAtStop).toBe(0);
        for (const row of res.rounds) {
          expect([...row.sent, ...row.deferred].sort((a, b) => a - b)).toEqual(row.candidates);
          if (row.order) expect([...row.order].sort((a, b) => a - b)).toEqual(row.sent);
        }
        expect(res.rounds[0].candidates.length).toBe(n);
      }
    });
  }
});

describe("simulatePolicyRounds detects a losing policy", () => {
  it("a policy that drops its deferred pages loses them", async () => {
    // not built on SelectionPolicyBase: sends half the candidates and forgets the rest
    const broken = {
      kind: "selection" as const,
      name: "broken",
      select(ctx: { dirty: DirtyBitmap; lastRound: boolean }, out: { send: DirtyBitmap; defer: DirtyBitmap }) {
        out.send.clearAll();
        out.defer.clearAll();
        for (const p of ctx.dirty.collect()) if (p % 2 === 0 || ctx.lastRound) out.send.set(p);
        return { sent: out.send.count(), deferred: 0 };
      },
      reset() {},
      dispose() {},
    };
    const r = await simulatePolicyRounds({ kernel: k, pageCount: 8, writes: [[1, 2, 3], [5]], selection: broken });
    // 1, 3, 5, 7 skipped in round 0; 1 and 3 skipped again in round 1; 5 re-dirtied and sent at the stop
    expect(r.lost).toEqual([1, 3, 7]);
  });
});
