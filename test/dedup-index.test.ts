import { beforeAll, describe, expect, it } from "vitest";
import { DEDUP_NONE, DedupIndex, hashPages, loadKernel, PAGE_SIZE, PagewireError, type Kernel } from "../src/index.js";
import { randInt, rng } from "./support/random.js";

let k: Kernel;
/** A pool of distinct page contents and their XXH3-128 hashes (low, high per content). */
let pool: BigUint64Array;
const POOL = 24;
const SEED = 0x5eed5eed5eedn;

beforeAll(async () => {
  k = await loadKernel();
  const r = rng(99);
  const pages = new Uint8Array(POOL * PAGE_SIZE);
  for (let c = 0; c < POOL; c++)
    for (let j = 0; j < 64; j++) pages[c * PAGE_SIZE + randInt(r, PAGE_SIZE)] = 1 + randInt(r, 255);
  pool = hashPages(k, pages, POOL, new BigUint64Array(2 * POOL), { bits: 128, seed: SEED });
});

function hashesOf(contents: number[]): BigUint64Array {
  const h = new BigUint64Array(2 * contents.length);
  contents.forEach((c, i) => {
    h[2 * i] = pool[2 * c];
    h[2 * i + 1] = pool[2 * c + 1];
  });
  return h;
}

describe("DedupIndex", () => {
  it("finds a duplicate within one batch, across batches and across guests", () => {
    const ix = new DedupIndex(k, { maxBytes: 1 << 16 });
    ix.addGuest(1, 100);
    ix.addGuest(7, 50);
    // within a batch: page 3 and page 9 carry content 5
    const r1 = ix.lookupAndRecord(1, Uint32Array.of(3, 9), hashesOf([5, 5]));
    expect(r1[0]).toBe(DEDUP_NONE);
    expect([r1[2], r1[3]]).toEqual([1, 3]);
    // across rounds
    expect(ix.lookupPage(1, 20, pool[10], pool[11])).toEqual({ guest: 1, page: 3 });
    // across guests
    expect(ix.lookupPage(7, 0, pool[10], pool[11])).toEqual({ guest: 1, page: 3 });
    expect(ix.lookupPage(7, 1, pool[12], pool[13])).toBeNull();
    const s = ix.stats();
    expect(s).toMatchObject({ hits: 3, misses: 2, bytesSaved: 3 * PAGE_SIZE });
    ix.dispose();
  });

  it("drops an entry when its page is overwritten (record, lookup or invalidate)", () => {
    const ix = new DedupIndex(k, { maxBytes: 1 << 16 });
    ix.addGuest(0, 10);
    ix.record(0, Uint32Array.of(4), hashesOf([2]));
    ix.record(0, Uint32Array.of(4), hashesOf([3])); // page 4 now holds content 3
    expect(ix.lookupPage(0, 5, pool[4], pool[5])).toBeNull(); // content 2 is gone
    expect(ix.lookupPage(0, 6, pool[6], pool[7])).toEqual({ guest: 0, page: 4 });
    ix.invalidate(0, Uint32Array.of(4));
    // page 6 also holds content 3 but was a hit (the older holder is kept, 6 is not indexed)
    expect(ix.lookupPage(0, 7, pool[6], pool[7])).toBeNull();
    expect(ix.lookupPage(0, 8, pool[6], pool[7])).toEqual({ guest: 0, page: 7 });
    ix.dispose();
  });

  it("never hands out a reference whose destination content differs (random property test)", () => {
    for (const [seed, maxBytes] of [
      [1, 256],
      [2, 1024],
      [3, 1 << 14],
      [4, 512],
    ] as const) {
      const r = rng(seed);
      const ix = new DedupIndex(k, { maxBytes });
      const guests = [3, 11, 12];
      const P = 40;
      const dst = new Map<number, Int32Array>();
      for (const g of guests) {
        ix.addGuest(g, P);
        dst.set(g, new Int32Array(P).fill(-1));
      }
      let lookups = 0,
        hits = 0;
      for (let step = 0; step < 400; step++) {
        const g = guests[randInt(r, guests.length)];
        const mode = r();
        const n = 1 + randInt(r, 12);
        const pages = Uint32Array.from({ length: n }, () => randInt(r, P)); // repeats allowed
        // few distinct contents: pages change back and forth between them
        const contents = Array.from({ length: n }, () => randInt(r, 6 + (seed % 3) * 6));
        const d = dst.get(g)!;
        if (mode < 0.7) {
          const refs = ix.lookupAndRecord(g, pages, hashesOf(contents));
          lookups += n;
          // the destination applies the records in order
          for (let i = 0; i < n; i++) {
            if (refs[2 * i] !== DEDUP_NONE) {
              hits++;
              const held = dst.get(refs[2 * i])![refs[2 * i + 1]];
              expect(held, `step ${step}: reference for content ${contents[i]} names a page holding ${held}`).toBe(
                contents[i],
              );
              d[pages[i]] = held;
            } else d[pages[i]] = contents[i];
          }
        } else if (mode < 0.85) {
          ix.record(g, pages, hashesOf(contents));
          pages.forEach((p, i) => {
            d[p] = contents[i];
          });
        } else {
          ix.invalidate(g, pages);
          pages.forEach((p) => {
            d[p] = 1000 + randInt(r, 5);
          }); // unknown content (e.g. an XBZRLE result)
        }
      }
      const s = ix.stats();
      expect(s.hits).toBe(hits);
      expect(s.hits + s.misses).toBe(lookups);
      expect(hits).toBeGreaterThan(50);
      if (maxBytes <= 256) expect(s.evictions).toBeGreaterThan(0);
      ix.dispose();
    }
  });

  it("bounds memory: capacity from maxBytes, LRU eviction within a bucket", () => {
    const ix = new DedupIndex(k, { maxBytes: 128 }); // one bucket of 4 ways
    expect(ix.capacity).toBe(4);
    ix.addGuest(0, 16);
    ix.record(0, Uint32Array.of(0, 1, 2, 3), hashesOf([0, 1, 2, 3]));
    expect(ix.lookupPage(0, 8, pool[0], pool[1])).toEqual({ guest: 0, page: 0 }); // refreshes content 0
    ix.record(0, Uint32Array.of(4), hashesOf([4])); // evicts the least recently used: content 1
    expect(ix.stats().evictions).toBe(1);
    expect(ix.lookupPage(0, 9, pool[2], pool[3])).toBeNull();
    expect(ix.lookupPage(0, 10, pool[0], pool[1])).toEqual({ guest: 0, page: 0 });
    expect(ix.byteLength).toBe(64 + 128 + 16 * 4);
    ix.dispose();
  });

  it("rejects unknown guests, duplicate guests and pages out of range", () => {
    const ix = new DedupIndex(k, { maxBytes: 4096 });
    ix.addGuest(1, 4);
    expect(() => ix.addGuest(1, 4)).toThrow(PagewireError);
    expect(() => ix.record(2, Uint32Array.of(0), hashesOf([0]))).toThrow(/not registered/);
    expect(() => ix.record(1, Uint32Array.of(4), hashesOf([0]))).toThrow(/outside/);
    expect(() => ix.record(1, Uint32Array.of(0, 1), hashesOf([0]))).toThrow(/hash words/);
    ix.dispose();
  });
});
