import { beforeAll, describe, expect, it } from "vitest";
import {
  DirtyBitmap,
  DirtyRateSampler,
  estimateFromSample,
  HashDirtyLog,
  loadKernel,
  PAGE_SIZE,
  samplePages,
  type Kernel,
} from "../../src/index.js";
import { randInt, rng } from "../support/random.js";

let k: Kernel;
beforeAll(async () => {
  k = await loadKernel();
});

/** Dirties exactly `count` distinct random pages of `mem` (a real content change each). */
function dirtyExactly(mem: Uint8Array, pageCount: number, count: number, r: () => number): Set<number> {
  const chosen = new Set<number>();
  while (chosen.size < count) chosen.add(randInt(r, pageCount));
  for (const p of chosen) mem[p * PAGE_SIZE + randInt(r, PAGE_SIZE)] ^= 1 + randInt(r, 255);
  return chosen;
}

describe("HashDirtyLog (exact mode)", () => {
  it("reports exactly the pages whose content changed, in kernel memory and outside it", () => {
    const P = 3000;
    for (const inKernel of [true, false]) {
      const region = k.alloc(P * PAGE_SIZE, 64);
      const mem = () => (inKernel ? k.bytes(region) : outside);
      const outside = new Uint8Array(P * PAGE_SIZE);
      const r = rng(inKernel ? 1 : 2);
      mem().fill(0);
      const log = new HashDirtyLog(k, inKernel ? region : outside, P, { seed: 77n });
      const bm = new DirtyBitmap(k, P);
      for (let round = 0; round < 3; round++) {
        const changed = dirtyExactly(mem(), P, 50 + 100 * round, r);
        // rewrite some pages with the same bytes, and change then restore another: invisible
        mem()[5 * PAGE_SIZE] = mem()[5 * PAGE_SIZE];
        if (!changed.has(7)) {
          mem()[7 * PAGE_SIZE + 3] ^= 0x10;
          mem()[7 * PAGE_SIZE + 3] ^= 0x10;
        }
        log.harvest(bm);
        expect(Array.from(bm.collect())).toEqual([...changed].sort((a, b) => a - b));
      }
      expect(log.harvest(bm).count()).toBe(0);
      bm.dispose();
      log.dispose();
      k.free(region);
    }
  });

  it("marks pages in the last partial bitmap word and the last window", () => {
    const P = 1024 + 33;
    const mem = new Uint8Array(P * PAGE_SIZE);
    const log = new HashDirtyLog(k, mem, P);
    mem[(P - 1) * PAGE_SIZE] = 1;
    mem[1024 * PAGE_SIZE + 9] = 1;
    expect(Array.from(log.harvest().collect())).toEqual([1024, P - 1]);
    log.dispose();
  });
});

describe("DirtyRateSampler (QEMU calc-dirty-rate style)", () => {
  it("samples distinct pages, ascending, of the requested count", () => {
    const s = samplePages(262144, 512, 9);
    expect(s.length).toBe(512);
    expect(new Set(s).size).toBe(512);
    for (let i = 1; i < s.length; i++) expect(s[i]).toBeGreaterThan(s[i - 1]);
    expect(s[s.length - 1]).toBeLessThan(262144);
    expect(samplePages(10, 10, 1)).toEqual(Uint32Array.from({ length: 10 }, (_, i) => i));
  });

  it("the stated interval holds the known dirty rate in ≥ 90 % of trials (95 % intervals)", () => {
    const P = 16384; // 64 MiB guest: 32 samples at 512/GiB, so ask for more
    const region = k.alloc(P * PAGE_SIZE, 64);
    k.bytes(region).fill(0);
    const r = rng(11);
    let inside = 0,
      trials = 0;
    for (const share of [0, 0.02, 0.1, 0.3, 0.7]) {
      for (let t = 0; t < 8; t++) {
        const s = new DirtyRateSampler(k, region, P, {
          samplePagesPerGiB: 16384,
          sampleSeed: 1000 + trials,
          hashSeed: 5n,
        });
        expect(s.sample.length).toBe(1024);
        s.start();
        const truth = Math.round(share * P);
        dirtyExactly(k.bytes(region), P, truth, r);
        const e = s.finish(2); // 2 s of guest time
        const truthRate = truth / 2;
        trials++;
        if (e.pagesPerSecondLow <= truthRate && truthRate <= e.pagesPerSecondHigh) inside++;
        expect(Math.abs(e.pagesPerSecond - truthRate)).toBeLessThanOrEqual(
          2.5 * (e.pagesPerSecondHigh - e.pagesPerSecondLow) + 1e-9,
        );
        if (share === 0) expect(e.dirtySampled).toBe(0);
      }
    }
    expect(inside / trials).toBeGreaterThanOrEqual(0.9);
    k.free(region);
  });

  it("estimateFromSample: Wilson interval, finite-population correction, units", () => {
    const e = estimateFromSample(262144, 512, 51, 1);
    expect(e.dirtyFraction).toBeCloseTo(51 / 512, 10);
    expect(e.dirtyFractionLow).toBeLessThan(e.dirtyFraction);
    expect(e.dirtyFractionHigh).toBeGreaterThan(e.dirtyFraction);
    expect(e.pagesPerSecond).toBeCloseTo((51 / 512) * 262144, 6);
    expect(e.dirtyRateMiBps).toBeCloseTo((51 / 512) * 1024, 6);
    // zero dirty pages: the interval is [0, something > 0]
    const z = estimateFromSample(262144, 512, 0, 1);
    expect(z.dirtyFractionLow).toBe(0);
    expect(z.dirtyFractionHigh).toBeGreaterThan(0);
    // sampling every page: no uncertainty left
    const all = estimateFromSample(1000, 1000, 250, 1);
    expect(all.dirtyFractionLow).toBeCloseTo(0.25, 12);
    expect(all.dirtyFractionHigh).toBeCloseTo(0.25, 12);
    // wider at higher confidence
    const c99 = estimateFromSample(262144, 512, 51, 1, 0.99);
    expect(c99.dirtyFractionHigh - c99.dirtyFractionLow).toBeGreaterThan(e.dirtyFractionHigh - e.dirtyFractionLow);
  });
});
