import { beforeAll, describe, expect, it } from "vitest";
import { DirtyBitmap, loadKernel, PagewireError, type Kernel } from "../src/index.js";
import { PageHistory } from "../src/policy/page-history.js";
import { HistoryOracle } from "./support/history-oracle.js";
import { randInt, rng } from "./support/random.js";

let k: Kernel;
beforeAll(async () => {
  k = await loadKernel();
});

function bitmapOf(pageCount: number, pages: Iterable<number>): DirtyBitmap {
  const b = new DirtyBitmap(k, pageCount);
  for (const p of pages) b.set(p);
  return b;
}

/** Random trace with a hot set (skewed reuse) so distances take many values. */
function randomTrace(r: () => number, pageCount: number, length: number): number[] {
  const hot = Math.max(1, pageCount >> 3);
  return Array.from({ length }, () => (r() < 0.6 ? randInt(r, hot) : randInt(r, pageCount)));
}

function expectMatches(h: PageHistory, o: HistoryOracle): void {
  const n = h.pageCount;
  const all = bitmapOf(
    n,
    Array.from({ length: n }, (_, i) => i),
  );
  expect(Array.from(h.reuseDistances(all))).toEqual(o.distance);
  expect(Array.from(h.dirtyCounts(all))).toEqual(o.count);
  for (let p = 0; p < n; p++) {
    expect(h.reuseDistance(p)).toBe(o.distance[p]);
    expect(h.dirtyCount(p)).toBe(o.count[p]);
  }
  all.dispose();
}

describe("PageHistory reuse distance against the brute-force oracle", () => {
  it("hand-written trace: a b c a b b d a", () => {
    const h = new PageHistory(k, 4);
    // a=0 b=1 c=2 d=3
    h.recordWrites(Uint32Array.from([0, 1, 2, 0, 1, 1, 3, 0]));
    expect(h.reuseDistance(0)).toBe(2); // between the 2nd and 3rd a: b, d
    expect(h.reuseDistance(1)).toBe(0); // b b
    expect(h.reuseDistance(2)).toBe(-1); // c once
    expect(h.reuseDistance(3)).toBe(-1);
    expect(h.dirtyCount(1)).toBe(0); // counts count rounds, not traced writes
    h.dispose();
  });

  // [pages, writes, seed, minStampSpan]: small spans force many renumberings and span growth
  for (const [n, len, seed, span] of [
    [1, 300, 1, 65536],
    [7, 400, 2, 65536],
    [50, 5000, 3, 65536],
    [333, 3000, 4, 65536],
    [1000, 2500, 5, 65536],
    [1000, 4000, 6, 1],
    [3000, 3000, 7, 40],
  ]) {
    it(`random ordered trace: ${n} pages, ${len} writes (seed ${seed}, stamp span ≥ ${span})`, () => {
      const r = rng(seed);
      const h = new PageHistory(k, n, { minStampSpan: span });
      const o = new HistoryOracle(n);
      // several calls, so state carries across batches
      for (let done = 0; done < len; ) {
        const chunk = randomTrace(r, n, Math.min(len - done, 1 + randInt(r, 700)));
        h.recordWrites(Uint32Array.from(chunk));
        o.recordWrites(chunk);
        done += chunk.length;
      }
      expectMatches(h, o);
      // few pages and many writes: stamps must have been renumbered, and stayed exact
      if (len > Math.min(span, n + Math.max(n >> 1, 64))) expect(h.compactions).toBeGreaterThan(0);
      h.dispose();
    });
  }

  for (const [n, rounds, density, seed, span] of [
    [64, 30, 0.3, 11, 65536],
    [513, 25, 0.05, 12, 65536],
    [4099, 12, 0.01, 13, 65536],
    [200, 120, 0.5, 14, 65536],
    [4099, 30, 0.02, 15, 8],
  ]) {
    it(`random rounds: ${n} pages, ${rounds} rounds at density ${density} (index-order stamping, span ≥ ${span})`, () => {
      const r = rng(seed);
      const h = new PageHistory(k, n, { minStampSpan: span });
      const o = new HistoryOracle(n);
      for (let t = 0; t < rounds; t++) {
        const pages = randomTrace(r, n, Math.round(n * density) + 1);
        const b = bitmapOf(n, pages);
        expect(h.recordRound(b)).toBe(new Set(pages).size);
        o.recordRound(pages);
        b.dispose();
        for (let q = 0; q < 20; q++) {
          const p = randInt(r, n),
            ago = randInt(r, 8);
          expect(h.dirtiedInRound(p, ago)).toBe(o.dirtiedInRound(p, ago));
        }
      }
      expect(h.rounds).toBe(rounds);
      expectMatches(h, o);
      h.dispose();
    });
  }

  it("recordWrites then recordRound({ distances: false }): trace distances, round counts", () => {
    const r = rng(21);
    const n = 300;
    const h = new PageHistory(k, n);
    const o = new HistoryOracle(n);
    for (let t = 0; t < 10; t++) {
      const w = randomTrace(r, n, 200);
      h.recordWrites(Uint32Array.from(w));
      o.recordWrites(w);
      const b = bitmapOf(n, w);
      h.recordRound(b, { distances: false });
      o.recordRound(w, false);
      b.dispose();
    }
    expectMatches(h, o);
    h.dispose();
  });
});

describe("PageHistory rounds, counts and sends", () => {
  it("ring of 8 rounds written as binary literals, page 0 first", () => {
    const rounds = [
      "10000001",
      "11000000",
      "01100000",
      "00110000",
      "00011000",
      "00001100",
      "00000110",
      "00000011",
      "10000000",
    ];
    const h = new PageHistory(k, 8);
    for (const s of rounds) {
      const b = bitmapOf(
        8,
        [...s].flatMap((c, i) => (c === "1" ? [i] : [])),
      );
      h.recordRound(b);
      b.dispose();
    }
    const row = (ago: number) => Array.from({ length: 8 }, (_, p) => (h.dirtiedInRound(p, ago) ? "1" : "0")).join("");
    expect(row(0)).toBe("10000000");
    expect(row(1)).toBe("00000011");
    expect(row(7)).toBe("11000000"); // the 9th round dropped "10000001"
    expect(Array.from({ length: 8 }, (_, p) => h.dirtyCount(p))).toEqual([3, 2, 2, 2, 2, 2, 2, 2]);
    h.dispose();
  });

  it("dirty count saturates at 255", () => {
    const h = new PageHistory(k, 2);
    const b = bitmapOf(2, [0]);
    for (let i = 0; i < 300; i++) h.recordRound(b); // page 0 dirty in 300 rounds
    expect(h.dirtyCount(0)).toBe(255);
    expect(h.dirtyCount(1)).toBe(0);
    expect(h.reuseDistance(0)).toBe(0);
    b.dispose();
    h.dispose();
  });

  it("markSent keeps the round last sent; batch form and saturation", () => {
    const h = new PageHistory(k, 70);
    const a = bitmapOf(70, [1, 5, 69]);
    const b = bitmapOf(70, [5]);
    expect(h.lastSentRound(1)).toBe(-1);
    expect(h.markSent(a, 0)).toBe(3);
    h.markSent(b, 3);
    expect([h.lastSentRound(1), h.lastSentRound(5), h.lastSentRound(69), h.lastSentRound(2)]).toEqual([0, 3, 0, -1]);
    expect(Array.from(h.lastSentRounds(a))).toEqual([0, 3, 0]);
    h.markSent(b, 1_000_000);
    expect(h.lastSentRound(5)).toBe(65534);
    h.dispose();
  });

  it("filters: count below, distance at least (none = infinitely far), weighted rate", () => {
    const n = 16;
    const h = new PageHistory(k, n);
    // page 0: dirty in 3 rounds, distance 1; page 1: 1 round; page 2: 2 rounds, distance 0
    for (const round of [
      [0, 1],
      [0, 2],
      [0, 2],
    ])
      h.recordRound(bitmapOf(n, round));
    h.recordWrites(Uint32Array.from([2, 0, 1, 0]));
    expect([h.reuseDistance(0), h.reuseDistance(1), h.reuseDistance(2)]).toEqual([1, 2, 0]); // only pages 0 and 2 exist besides 1
    const cand = bitmapOf(n, [0, 1, 2]);
    const out = new DirtyBitmap(k, n);
    out.set(15); // overwritten
    expect(h.selectDirtyCountBelow(cand, 2.5, out)).toBe(2); // counts 3,1,2 → 1, 2
    expect(Array.from(out.collect())).toEqual([1, 2]);
    expect(h.selectReuseDistanceAtLeast(cand, 1, out)).toBe(2); // 0 (1), 1 (2)
    expect(Array.from(out.collect())).toEqual([0, 1]);
    expect(h.selectReuseDistanceAtLeast(cand, 3, out)).toBe(0);
    const fresh = bitmapOf(n, [7]); // never dirtied: no distance, infinitely far
    expect(h.selectReuseDistanceAtLeast(fresh, 1_000_000, out)).toBe(1);
    expect(h.sumDirtyCounts(cand)).toEqual({ sum: 6, pages: 3 });
    // rounds: page 3 dirty in the last two rounds, page 4 only two rounds ago
    const g = new PageHistory(k, n, { reuseDistance: false });
    g.recordRound(bitmapOf(n, [3, 4]));
    g.recordRound(bitmapOf(n, [3]));
    const c2 = bitmapOf(n, [3, 4, 5]);
    expect(g.selectWeightedRateAtLeast(c2, [0.5, 0.25], 0.6, out)).toBe(1);
    expect(Array.from(out.collect())).toEqual([3]);
    expect(g.selectWeightedRateAtLeast(c2, [0.5, 0.25], 0.25, out)).toBe(2);
    h.dispose();
    g.dispose();
  });

  it("memory: the history is ≤ 4 bytes per page; the tracker is optional", () => {
    const n = 1 << 16;
    const h = new PageHistory(k, n, { reuseDistance: false });
    expect(h.historyBytes).toBeLessThanOrEqual(4 * n);
    expect(h.byteLength).toBeLessThanOrEqual(4 * n + 256);
    expect(() => h.recordWrites(Uint32Array.of(1))).toThrowError(PagewireError);
    try {
      h.reuseDistance(1);
    } catch (e) {
      expect((e as PagewireError).code).toBe("NO_REUSE_TRACKER");
    }
    h.dispose();
    const t = new PageHistory(k, n);
    expect(t.byteLength).toBeLessThanOrEqual(24 * n + 1024);
    t.dispose();
  });

  it("rejects out-of-range pages and records nothing", () => {
    const h = new PageHistory(k, 10);
    expect(() => h.recordWrites(Uint32Array.from([1, 2, 10]))).toThrowError(/page 10 is outside 0\.\.10/);
    expect(h.dirtyCount(1)).toBe(0);
    expect(() => h.dirtyCount(-1)).toThrowError(PagewireError);
    expect(() => h.roundBitmap(8)).toThrowError(/0\.\.7/);
    expect(() => h.recordRound(new DirtyBitmap(k, 11))).toThrowError(/10 vs 11/);
    h.dispose();
  });
});
