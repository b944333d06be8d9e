import { beforeAll, describe, expect, it } from "vitest";
import {
  type BlockOrderedSelection,
  createPolicy,
  DirtyBitmap,
  listPolicies,
  loadKernel,
  type MicrowiperSelection,
  type SecondChanceSelection,
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

  it("dpdt delays pages in to_send and to_skip, re-examines them each round, sends the cooled ones", async () => {
    // r1: to_send 0,1,2; to_skip (written during r1) 0,1,3 → to_delay 0,1
    // r2: 0 and 1 still hot (in the latest harvest 0,1,3) → stay delayed
    // r3: 1 is in neither the latest harvest (0,4) nor to_skip (0): it went cold and is sent
    const r = await run("dpdt");
    expect(table(r)).toEqual(["0,1,2,3,4,5,6,7/", "2/0,1", "3/0,1", "1,4/0", "/0", "/0", "0/"]);
    expect(r.rounds[3].note).toBe("1 delayed pages went cold");
  });

  it("dpdt without a peek has no to_skip: it delays nothing", async () => {
    expect(table(await run("dpdt", {}, W, 8, { peek: false }))).toEqual(table(await run("vanilla")));
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

  it("second-chance phase 1 skips a page clean for two rounds that is in to_skip", async () => {
    // r3: 1 and 2 were clean in the harvests of r1 and r2, but 1 is written again during r3
    const writes = [[1, 2], [3], [], [1, 5], []];
    expect(table(await run("second-chance", { minPages: 0 }, writes))).toEqual([
      "0,1,2,3,4,5,6,7/",
      "/1,2",
      "/1,2,3",
      "2/1,3",
      "3/1,5",
      "1,5/",
    ]);
  });

  it("second-chance phase 2 sends every page not in to_skip: < 55 pages, or after maxRounds", async () => {
    const few = await run("second-chance");
    expect(table(few)).toEqual(table(await run("xen-to-skip")));
    expect(few.rounds[0].note).toBe("switched to phase 2");
    expect(table(await run("second-chance", { minPages: 0, maxRounds: 2 }))).toEqual([
      "0,1,2,3,4,5,6,7/",
      "/0,1,2",
      "1,2,3/0",
      "4/0",
      "/0",
      "/0",
      "0/",
    ]);
  });

  it("second-chance switches once the duplicated (re-sent) pages exceed the factor × the guest", async () => {
    // 4 pages, factor 0.25: more than 1 duplicate. The first full pass duplicates nothing;
    // r3 re-sends 0 and 1 (2 duplicates), so r4 is in phase 2
    const writes = [[0, 1], [2, 3], [], [], [0, 1, 2, 3], []];
    const r = await run("second-chance", { minPages: 0, maxSentFactor: 0.25 }, writes, 4, { peek: false });
    expect(table(r)).toEqual(["0,1,2,3/", "/0,1", "/0,1,2,3", "0,1/2,3", "2,3/", "0,1,2,3/", "/"]);
    expect(r.rounds[4].note).toBe("switched to phase 2");
  });

  it("history-threshold without a warm-up: T is the mean updation over all pages", async () => {
    // r4: updation 0:4 1:2 2:1 3:1 4:1 over 8 pages, T = 9/8 → 2, 3, 4 below; clean for 3 rounds: 2
    // r5: T = 10/8 → 3, 4 below (2 was sent); 4 was written 2 rounds ago → 3
    expect(table(await run("history-threshold"))).toEqual([
      "0,1,2,3,4,5,6,7/",
      "/0,1,2",
      "/0,1,2,3",
      "/0,1,2,3,4",
      "2/0,1,3,4",
      "3/0,1,4",
      "0,1,4/",
    ]);
  });

  it("history-threshold with a warm-up: the first round sends the unmodified pages", async () => {
    // warm-up: page 0 in 8 syncs, page 1 in the first → updation 0:8 1:1, T = 9/4
    const warmup = [[0, 1], [0], [0], [0], [0], [0], [0], [0]];
    const writes = [[0, 2], [0], [0], [0], [0]];
    // r1: updation 0:9 1:1 2:1, T = 11/4; 1 and 2 below, 2 was just written → 1
    // r4: T = 14/4; 2 clean for the 3 latest syncs → sent
    const r = await run("history-threshold", {}, writes, 4, { warmup });
    expect(table(r)).toEqual(["2,3/0,1", "1/0,2", "/0,2", "/0,2", "2/0", "0/"]);
    expect(r.rounds[1].note).toBe("T = 2.750");
  });

  it("history-threshold: when every page was modified, the first round applies the second-phase test", async () => {
    // updation 0:6 1:1 2:1, T = 8/3; 1 and 2 are below T and clean in the 3 latest syncs
    const warmup = [[0, 1, 2], [0], [0], [0], [0], [0]];
    const r = await run("history-threshold", {}, [[], []], 3, { warmup });
    expect(table(r)).toEqual(["1,2/0", "/0", "0/"]);
  });

  it("weighted-hot defers pages with an age-weighted dirty rate ≥ 0.7", async () => {
    // r2: 0 and 1 dirty in both latest samples: 1/2 + 1/4 = 0.75 → hot; 3 only in the latest: 0.5
    // r3: 1 only 1 and 2 samples ago: 0.375
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

  it("weighted-hot samples on a time grid: with 500 ms samples a 1 s round ages a page two samples", async () => {
    // r2: page 0's rate is 1/2 · 1/4 + 1/2 = 0.625 (not 0.75): below the hot threshold
    expect(table(await run("weighted-hot", { intervalMs: 500 }))).toEqual([
      "0,1,2,3,4,5,6,7/",
      "0,1,2/",
      "0,1,3/",
      "4/0",
      "/0",
      "/0",
      "0/",
    ]);
  });

  it("weighted-hot adapts its thresholds to mispredictions and sends warm pages after the other written ones", async () => {
    // r2: both pages sent in r1 were rewritten → hot 0.7 → 0.63; 4 and 5 (0.75) deferred
    // r3: both hot pages stayed clean → hot 0.693; 0 (0.5) is warm (≥ 0.6 × 0.693), 4 and 5 (0.375) go first
    const writes = [[4, 5], [4, 5], [0], []];
    const r = await run("weighted-hot", { warmRatio: 0.6 }, writes);
    expect(table(r)).toEqual(["0,1,2,3,4,5,6,7/", "4,5/", "/4,5", "0,4,5/", "/"]);
    expect(r.rounds[2].note).toBe("hot threshold 0.700 → 0.630");
    expect(r.rounds[3].note).toBe("hot threshold 0.630 → 0.693");
    expect(r.rounds[3].order).toEqual([4, 5, 0]);
  });

  it("block-ordered: least dirty blocks first; a page goes when its clean rounds since sent ≥ its dirty ones", async () => {
    // blocks of 4. r1: each candidate has one 1 and no 0 since it was sent → all wait.
    // r2: cumulative block counts b0 7, b1 3, b2 2, b3 1; 3, 4 and 14 have one 1 and one 0
    // r3: nothing qualifies; r4: 0, 1, 2 (two 1s, two 0s) and 9 qualify, 5 (three 1s) waits
    const writes = [[0, 1, 2, 5, 9], [0, 1, 2, 3, 4, 5, 9, 14], [5], [], []];
    const r = await run("block-ordered", { blockPages: 4 }, writes, 16);
    expect(table(r)).toEqual([
      "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15/",
      "/0,1,2,5,9",
      "3,4,14/0,1,2,5,9",
      "/0,1,2,5,9",
      "0,1,2,9/5",
      "5/",
    ]);
    expect(r.rounds[2].order).toEqual([14, 4, 3]);
    expect(r.rounds[4].order).toEqual([9, 0, 1, 2]);
  });

  it("block-ordered and microwiper size blocks from the guest's pages", () => {
    const b = createPolicy("selection", "block-ordered") as BlockOrderedSelection;
    const m = createPolicy("selection", "microwiper") as MicrowiperSelection;
    expect([b.blockPages(8), b.blockPages(65536), b.blockPages(1 << 24), b.blockPages(100)]).toEqual([
      4, 256, 4096, 16,
    ]);
    expect(m.stripePages(65536)).toBe(256);
    expect(
      (createPolicy("selection", "microwiper", { stripePages: 8 }) as MicrowiperSelection).stripePages(65536),
    ).toBe(8);
  });

  it("microwiper sends slow stripes first; the next iteration starts once their rate exceeds the bandwidth", async () => {
    // stripes of 4; bandwidth 1 page/s; r1 rates s0 3, s1 1, s2 1 → s1 (acc 1), s2 (acc 2 > 1: the round's last)
    // r2 rates s0 1, s1 1, s2 1, s3 2 → s0 (acc 1), s1 (acc 2 > 1)
    const writes = [[0, 1, 2, 5, 9], [0, 4, 8, 12, 13], []];
    const r = await run("microwiper", { stripePages: 4 }, writes, 16, { bandwidthPagesPerRound: 1 });
    expect(table(r)).toEqual(["0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15/", "5,9/0,1,2", "0,1,2,4/8,12,13", "8,12,13/"]);
    expect(r.rounds[1].order).toEqual([5, 9]);
    expect(r.rounds[2].order).toEqual([0, 1, 2, 4]);
    expect(r.rounds[1].note).toBe("next iteration: rewrite rate 2.0 > 1.0 pages/s");
    // no bandwidth estimate: everything, still slowest stripe first
    const u = await run("microwiper", { stripePages: 4 }, writes, 16);
    expect(u.rounds[1].order).toEqual([5, 9, 0, 1, 2]);
    expect(u.rounds[1].deferred).toEqual([]);
  });

  it("recheck: a page of a batch found in a fresh to_skip is held back; dpdt delays it, second-chance does not count it sent", async () => {
    const n = 8;
    const h = new PageHistory(k, n);
    const dirty = new DirtyBitmap(k, n),
      send = new DirtyBitmap(k, n),
      defer = new DirtyBitmap(k, n),
      peek = new DirtyBitmap(k, n);
    const ctx = (round: number) => ({
      round,
      dirty,
      history: h,
      firstRound: round === 0,
      lastRound: false,
      guestPages: n,
      pagesSent: 0,
      redirtied: peek,
    });
    const dpdt = createPolicy("selection", "dpdt");
    const second = createPolicy("selection", "second-chance", { minPages: 0, maxRounds: 1 });
    for (const p of [dpdt, second]) {
      dirty.setRange(0, n);
      p.select(ctx(0), { send, defer });
    }
    // round 1: candidates 1, 2, 3 (the harvest); nothing re-dirtied when the round starts
    dirty.clearAll();
    for (const x of [1, 2, 3]) dirty.set(x);
    h.recordRound(dirty);
    expect(dpdt.select(ctx(1), { send, defer }).sent).toBe(3);
    // page 2 is written while the first batch goes out: the second batch [2, 3] sends only 3
    peek.set(2);
    expect(Array.from(dpdt.recheck!(Uint32Array.of(2, 3), peek))).toEqual([3]);
    expect(Array.from(dpdt.recheck!(Uint32Array.of(1), peek))).toEqual([1]);
    // round 2: page 2 (pending, in the harvest) is still hot, so it stays in to_delay although not in to_skip now
    dirty.clearAll();
    dirty.set(2);
    h.recordRound(dirty);
    peek.clearAll();
    expect(dpdt.select(ctx(2), { send, defer })).toMatchObject({ sent: 0, deferred: 1 });
    // second-chance (phase 2 from round 1): pages 1..3 were all sent in round 0, so 3 duplicates, minus the held one
    const s = second as SecondChanceSelection;
    dirty.clearAll();
    for (const x of [1, 2, 3]) dirty.set(x);
    second.select(ctx(1), { send, defer });
    expect(s.duplicated).toBe(3);
    peek.set(2);
    second.recheck!(Uint32Array.of(1, 2, 3), peek);
    expect(s.duplicated).toBe(2);
    for (const b of [dirty, send, defer, peek]) b.dispose();
    dpdt.dispose();
    second.dispose();
    h.dispose();
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
