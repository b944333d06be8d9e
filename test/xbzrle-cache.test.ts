import { beforeAll, describe, expect, it } from "vitest";
import {
  loadKernel,
  PAGE_SIZE,
  PagewireRangeError,
  SAVE_MISS_INSERTED,
  SAVE_MISS_NOT_INSERTED,
  XbzrleCache,
  type Kernel,
} from "../src/index.js";
import { rng } from "./support/random.js";
import { refXbzrleDecode, refXbzrleEncode } from "./support/xbzrle-oracle.js";

let k: Kernel;
beforeAll(async () => {
  k = await loadKernel();
});

const page = (v: number) => new Uint8Array(PAGE_SIZE).fill(v);

describe("page_cache semantics", () => {
  it("rounds the size down to a power-of-two number of pages and rejects less than a page", () => {
    const c = new XbzrleCache(k, { bytes: 5 * PAGE_SIZE + 100 });
    expect(c.slots).toBe(4);
    expect(c.size).toBe(4 * PAGE_SIZE);
    expect(c.stats()["cache-size"]).toBe(4 * PAGE_SIZE);
    c.dispose();
    expect(() => new XbzrleCache(k, { bytes: PAGE_SIZE - 1 })).toThrow(PagewireRangeError);
    const d = new XbzrleCache(k);
    expect(d.size).toBe(64 * 1024 * 1024); // QEMU's default
    d.dispose();
  });

  it("is direct-mapped by page index: pages slots apart share a slot", () => {
    const c = new XbzrleCache(k, { bytes: 4 * PAGE_SIZE });
    expect(c.lookup(1)).toBeNull();
    expect(c.insert(1, page(1), 0)).toBe(true);
    expect(c.lookup(1)?.[0]).toBe(1);
    expect(c.lookup(5)).toBeNull(); // same slot, other page
    expect(c.insert(2, page(2), 0)).toBe(true); // another slot
    expect(c.lookup(1)?.[0]).toBe(1);
    c.dispose();
  });

  it("refuses to replace another page while age + 2 > now, accepts after", () => {
    const c = new XbzrleCache(k, { bytes: 4 * PAGE_SIZE });
    expect(c.insert(1, page(1), 10)).toBe(true);
    expect(c.insert(5, page(5), 10)).toBe(false);
    expect(c.insert(5, page(5), 11)).toBe(false);
    expect(c.lookup(1)?.[0]).toBe(1);
    expect(c.insert(5, page(5), 12)).toBe(true); // 10 + 2 > 12 is false
    expect(c.lookup(1)).toBeNull();
    expect(c.lookup(5)?.[0]).toBe(5);
    // the same page may always be refreshed
    expect(c.insert(5, page(6), 12)).toBe(true);
    expect(c.lookup(5)?.[0]).toBe(6);
    c.dispose();
  });

  it("a lookup with the sync count refreshes the age (cache_is_cached)", () => {
    const c = new XbzrleCache(k, { bytes: 4 * PAGE_SIZE });
    c.insert(1, page(1), 0);
    expect(c.lookup(1, 5)).not.toBeNull();
    expect(c.insert(5, page(5), 6)).toBe(false); // age is now 5
    expect(c.lookup(1)).not.toBeNull(); // without a sync count: no refresh
    expect(c.insert(5, page(5), 7)).toBe(true);
    c.dispose();
  });

  it("resize drops the contents (QEMU xbzrle_cache_resize) and keeps the counters", () => {
    const c = new XbzrleCache(k, { bytes: 8 * PAGE_SIZE });
    c.insert(3, page(3), 0);
    const ram = new Uint8Array(8 * PAGE_SIZE);
    c.savePages(ram, Uint32Array.from([4]), 0, new Uint8Array(PAGE_SIZE), new Int32Array(1));
    c.resize(8 * PAGE_SIZE + 1); // same number of slots: nothing happens
    expect(c.lookup(3)).not.toBeNull();
    c.resize(16 * PAGE_SIZE);
    expect(c.slots).toBe(16);
    expect(c.lookup(3)).toBeNull();
    expect(c.stats()["cache-miss"]).toBe(1);
    c.dispose();
  });
});

describe("savePages: QEMU save_xbzrle_page in a batch", () => {
  it("miss → insert, hit → encode and update, unchanged → 0, overflow → -1, counters", () => {
    const c = new XbzrleCache(k, { bytes: 16 * PAGE_SIZE });
    const ramR = k.alloc(32 * PAGE_SIZE, 64);
    const ram = k.bytes(ramR);
    ram.fill(0);
    const out = new Uint8Array(8 * PAGE_SIZE);
    const lengths = new Int32Array(8);

    // sync 1: pages 3 and 4 miss and are inserted
    expect(c.savePages(ram, Uint32Array.from([3, 4]), 1, out, lengths)).toBe(0);
    expect([...lengths.subarray(0, 2)]).toEqual([SAVE_MISS_INSERTED, SAVE_MISS_INSERTED]);

    // sync 2: page 3 changes one byte, page 4 unchanged, page 19 (slot 3) is refused
    ram[3 * PAGE_SIZE + 100] = 7;
    const total = c.savePages(ram, Uint32Array.from([3, 4, 19]), 2, out, lengths);
    expect([...lengths.subarray(0, 3)]).toEqual([3, 0, SAVE_MISS_NOT_INSERTED]);
    expect(total).toBe(3);
    expect([...out.subarray(0, 3)]).toEqual([100, 1, 7]); // zrun 100, nzrun 1, the byte
    expect(c.lookup(3)?.[100]).toBe(7); // the cache now holds what was sent

    // sync 3: page 3 becomes random: overflow, cache updated to the new content
    const r = rng(1);
    for (let i = 0; i < PAGE_SIZE; i++) ram[3 * PAGE_SIZE + i] = Math.floor(r() * 256);
    c.savePages(ram, Uint32Array.from([3]), 3, out, lengths);
    expect(lengths[0]).toBe(-1);
    expect(Buffer.from(c.lookup(3)!).equals(Buffer.from(ram.subarray(3 * PAGE_SIZE, 4 * PAGE_SIZE)))).toBe(true);

    const s = c.stats();
    expect(s.pages).toBe(3); // 3 hits: encoded, unchanged, overflow
    expect(s["cache-miss"]).toBe(3);
    expect(s.overflow).toBe(1);
    expect(s.bytes).toBe(3 + 3 + PAGE_SIZE);
    c.updateRates(6);
    expect(c.stats()["cache-miss-rate"]).toBeCloseTo(3 / 6);
    expect(c.stats()["encoding-rate"]).toBeCloseTo((3 * PAGE_SIZE) / (3 + 3 + PAGE_SIZE));
    c.updateRates(0); // an empty period
    expect(c.stats()["encoding-rate"]).toBe(0);
    k.free(ramR);
    c.dispose();
  });

  it("at the last stage: no insert on a miss, no cache update on a hit", () => {
    const c = new XbzrleCache(k, { bytes: 4 * PAGE_SIZE });
    const ram = new Uint8Array(8 * PAGE_SIZE);
    const out = new Uint8Array(2 * PAGE_SIZE);
    const lengths = new Int32Array(2);
    c.savePages(ram, Uint32Array.from([1]), 1, out, lengths);
    ram[PAGE_SIZE] = 9;
    c.savePages(ram, Uint32Array.from([1, 2]), 2, out, lengths, { lastStage: true });
    expect([...lengths]).toEqual([3, SAVE_MISS_NOT_INSERTED]);
    expect(c.lookup(1)?.[0]).toBe(0);
    expect(c.lookup(2)).toBeNull();
    c.dispose();
  });

  it("a simulated migration: decoding every round on the destination reproduces RAM", () => {
    const PAGES = 64;
    const c = new XbzrleCache(k, { bytes: 32 * PAGE_SIZE }); // smaller than RAM: refusals and misses happen
    const ram = new Uint8Array(PAGES * PAGE_SIZE);
    const dest = new Uint8Array(PAGES * PAGE_SIZE);
    const r = rng(42);
    for (let i = 0; i < ram.length; i++) ram[i] = r() < 0.5 ? 0 : Math.floor(r() * 256);
    let sync = 0;
    let pages = Uint32Array.from({ length: PAGES }, (_, i) => i);
    const seen = new Set<number>();
    for (let round = 0; round < 30; round++) {
      sync++;
      const out = new Uint8Array(pages.length * PAGE_SIZE);
      const lengths = new Int32Array(pages.length);
      c.savePages(ram, pages, sync, out, lengths);
      let off = 0;
      for (let i = 0; i < pages.length; i++) {
        const p = pages[i],
          n = lengths[i];
        const target = dest.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
        seen.add(n > 0 ? 1 : n);
        if (n > 0) {
          const res = refXbzrleDecode(out.subarray(off, off + n), target);
          expect(res).not.toBe(-1);
          target.set((res as [number, Uint8Array])[1]);
          off += n;
        } else if (n === -1 || n === SAVE_MISS_INSERTED) target.set(c.lookup(p)!);
        else if (n === SAVE_MISS_NOT_INSERTED) target.set(ram.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE));
        if (!Buffer.from(target).equals(Buffer.from(ram.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE))))
          throw new Error(`round ${round} page ${p}: result ${n} differs`);
      }
      if (round === 29) break; // the last round sent everything dirty
      // the guest dirties some pages: small writes, some full rewrites
      const dirty = new Set<number>();
      for (let t = 0; t < 20; t++) {
        const p = Math.floor(r() * PAGES);
        dirty.add(p);
        if (r() < 0.1) for (let x = 0; x < PAGE_SIZE; x++) ram[p * PAGE_SIZE + x] = Math.floor(r() * 256);
        else for (let x = 0; x < 8; x++) ram[p * PAGE_SIZE + Math.floor(r() * PAGE_SIZE)] = Math.floor(r() * 256);
      }
      pages = Uint32Array.from([...dirty].sort((a, b) => a - b));
    }
    expect(seen.has(1) && seen.has(-1) && seen.has(SAVE_MISS_INSERTED) && seen.has(SAVE_MISS_NOT_INSERTED)).toBe(true);
    expect(Buffer.from(dest).equals(Buffer.from(ram))).toBe(true);
    expect(refXbzrleEncode(ram.subarray(0, PAGE_SIZE), dest.subarray(0, PAGE_SIZE))).toBe(0);
    c.dispose();
  });

  it("rejects page indices past the end of ram", () => {
    const c = new XbzrleCache(k, { bytes: 4 * PAGE_SIZE });
    expect(() =>
      c.savePages(
        new Uint8Array(2 * PAGE_SIZE),
        Uint32Array.from([2]),
        1,
        new Uint8Array(PAGE_SIZE),
        new Int32Array(1),
      ),
    ).toThrow(PagewireRangeError);
    c.dispose();
  });
});
