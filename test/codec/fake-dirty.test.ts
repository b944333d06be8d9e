import { beforeAll, describe, expect, it } from "vitest";
import { FakeDirtyFilter, loadKernel, PAGE_SIZE, PagewireError, type Kernel } from "../../src/index.js";
import { randInt, rng } from "../support/random.js";

let k: Kernel;
beforeAll(async () => {
  k = await loadKernel();
});

describe("FakeDirtyFilter", () => {
  it("sends first-time pages, skips rewrites with the same bytes, sends real changes", () => {
    const P = 16;
    const mem = new Uint8Array(P * PAGE_SIZE);
    const f = new FakeDirtyFilter(k, P, { seed: 123n });
    let r = f.filter(mem, Uint32Array.of(0, 1, 2));
    expect(Array.from(r.send)).toEqual([0, 1, 2]);
    expect(r.hashes.length).toBe(6);
    // same content rewritten: all skipped
    r = f.filter(mem, Uint32Array.of(0, 1, 2));
    expect(r.send.length).toBe(0);
    expect(r.skipped).toBe(3);
    // page 1 changes, page 2 changes and changes back
    mem[1 * PAGE_SIZE + 100] = 7;
    mem[2 * PAGE_SIZE + 5] = 9;
    mem[2 * PAGE_SIZE + 5] = 0;
    r = f.filter(mem, Uint32Array.of(0, 1, 2, 3));
    expect(Array.from(r.send)).toEqual([1, 3]);
    expect(f.skippedUnchanged).toBe(5);
    expect(f.passed).toBe(5);
    // page 1 back to its previous content: differs from what was last sent (the 7) -> sent
    mem[1 * PAGE_SIZE + 100] = 0;
    expect(Array.from(f.filter(mem, Uint32Array.of(1)).send)).toEqual([1]);
    f.forget(Uint32Array.of(0));
    expect(Array.from(f.filter(mem, Uint32Array.of(0)).send)).toEqual([0]);
    f.dispose();
  });

  it("agrees with a byte-compare oracle on random rounds", () => {
    const P = 64;
    const r = rng(5);
    const mem = new Uint8Array(P * PAGE_SIZE);
    const lastSent = new Map<number, Uint8Array>();
    const f = new FakeDirtyFilter(k, P);
    for (let round = 0; round < 30; round++) {
      const dirty = new Set<number>();
      for (let w = 0; w < 20; w++) {
        const p = randInt(r, P);
        dirty.add(p);
        // writes that often leave the page as it was (a value toggled between 2 states)
        mem[p * PAGE_SIZE + randInt(r, 8)] = randInt(r, 2);
      }
      const list = Uint32Array.from([...dirty].sort((a, b) => a - b));
      const want = [...list].filter((p) => {
        const prev = lastSent.get(p);
        const cur = mem.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
        return !prev || prev.some((v, i) => v !== cur[i]);
      });
      const got = f.filter(mem, list);
      expect(Array.from(got.send)).toEqual(want);
      for (const p of want) lastSent.set(p, mem.slice(p * PAGE_SIZE, (p + 1) * PAGE_SIZE));
    }
    expect(f.skippedUnchanged).toBeGreaterThan(0);
    f.dispose();
  });

  it("uses a random seed per filter and rejects pages out of range", () => {
    const a = new FakeDirtyFilter(k, 4),
      b = new FakeDirtyFilter(k, 4);
    expect(a.seed).not.toBe(b.seed);
    expect(() => a.filter(new Uint8Array(4 * PAGE_SIZE), Uint32Array.of(4))).toThrow(PagewireError);
    a.dispose();
    b.dispose();
  });
});
