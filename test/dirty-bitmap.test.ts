import { Worker } from "node:worker_threads";
import { beforeAll, describe, expect, it } from "vitest";
import { DirtyBitmap, loadKernel, PAGE_SIZE, PagewireError, type Kernel } from "../src/index.js";
import { BitmapOracle } from "./support/bitmap-oracle.js";
import { randInt, rng } from "./support/random.js";

let k: Kernel;
beforeAll(async () => {
  k = await loadKernel();
});

/** A kernel bitmap and its oracle with the same random bits. */
function randomPair(pageCount: number, density: number, seed: number): [DirtyBitmap, BitmapOracle] {
  const r = rng(seed);
  const bm = new DirtyBitmap(k, pageCount);
  const o = new BitmapOracle(pageCount);
  for (let i = 0; i < pageCount; i++) {
    if (r() < density) {
      bm.set(i);
      o.bits[i] = true;
    }
  }
  return [bm, o];
}

/** Bitmap from a binary literal string, page 0 first (left to right). */
function fromBinary(s: string): DirtyBitmap {
  const bm = new DirtyBitmap(k, s.length);
  [...s].forEach((c, i) => c === "1" && bm.set(i));
  return bm;
}

function toBinary(bm: DirtyBitmap): string {
  let s = "";
  for (let i = 0; i < bm.pageCount; i++) s += bm.get(i) ? "1" : "0";
  return s;
}

// odd sizes: not multiples of 32, 64, 128 or 512, plus sizes around chunk edges
const SIZES = [1, 7, 31, 33, 63, 65, 127, 129, 511, 513, 1000, 4099, 70001];
const DENSITIES = [0, 0.0005, 0.01, 0.1, 0.5, 0.97, 1];

describe("DirtyBitmap against the plain-TS oracle", () => {
  for (const n of SIZES) {
    for (const d of DENSITIES) {
      it(`${n} pages at density ${d}`, () => {
        const seed = n * 1000 + Math.round(d * 997);
        const [bm, o] = randomPair(n, d, seed);
        expect(bm.count()).toBe(o.count());
        expect(Array.from(bm.collect())).toEqual(o.collect());
        expect(bm.ranges()).toEqual(o.ranges());
        const r = rng(seed + 1);
        for (let t = 0; t < 50; t++) {
          const from = randInt(r, n + 3);
          expect(bm.nextSet(from)).toBe(o.nextSet(from));
        }
        for (let t = 0; t < 50; t++) {
          const i = randInt(r, n);
          expect(bm.get(i)).toBe(o.bits[i]);
        }
        bm.dispose();
      });
    }
  }

  it("set algebra and copyFrom match the oracle on seeded random pairs", () => {
    for (const n of [65, 1000, 4099, 70001]) {
      for (const [da, db] of [
        [0.01, 0.5],
        [0.5, 0.5],
        [0.97, 0.1],
        [0, 1],
      ]) {
        const seed = n + Math.round(da * 100) * 7 + Math.round(db * 100);
        const [a, oa] = randomPair(n, da, seed);
        const [b, ob] = randomPair(n, db, seed + 99);
        const ops: Array<[string, (x: boolean, y: boolean) => boolean]> = [
          ["or", (x, y) => x || y],
          ["and", (x, y) => x && y],
          ["andNot", (x, y) => x && !y],
          ["xor", (x, y) => x !== y],
        ];
        for (const [op, f] of ops) {
          const c = new DirtyBitmap(k, n).copyFrom(a);
          (c as unknown as Record<string, (o: DirtyBitmap) => void>)[op](b);
          const want = oa.bits.map((x, i) => f(x, ob.bits[i]));
          expect(Array.from(c.collect()), `${op} n=${n}`).toEqual(want.flatMap((x, i) => (x ? [i] : [])));
          c.dispose();
        }
        a.dispose();
        b.dispose();
      }
    }
  });

  it("setRange matches the oracle for random ranges", () => {
    const r = rng(42);
    for (let t = 0; t < 300; t++) {
      const n = 1 + randInt(r, 3000);
      const [bm, o] = randomPair(n, r() * 0.2, t);
      const first = randInt(r, n);
      const count = randInt(r, n - first + 1);
      bm.setRange(first, count);
      for (let i = first; i < first + count; i++) o.bits[i] = true;
      expect(Array.from(bm.collect())).toEqual(o.collect());
      bm.dispose();
    }
  });

  it("harvest moves every bit and clears the source", () => {
    for (const shared of [false, true]) {
      const [bm, o] = randomPair(70001, 0.3, 7);
      const s = new DirtyBitmap(k, 70001, { shared });
      s.copyFrom(bm);
      const into = new DirtyBitmap(k, 70001);
      into.setRange(0, 70001); // harvest replaces, not ORs
      const h = s.harvest(into);
      expect(h).toBe(into);
      expect(Array.from(h.collect())).toEqual(o.collect());
      expect(s.count()).toBe(0);
      for (const b of [bm, s, into]) b.dispose();
    }
  });
});

describe("DirtyBitmap edges (binary literals)", () => {
  it("empty bitmap", () => {
    const bm = new DirtyBitmap(k, 0);
    expect(bm.count()).toBe(0);
    expect(bm.collect().length).toBe(0);
    expect(bm.ranges()).toEqual([]);
    expect(bm.nextSet(0)).toBe(-1);
    bm.dispose();
  });

  it("first and last bit, runs across word edges", () => {
    const s = "1" + "0".repeat(62) + "11" + "0".repeat(59) + "1";
    const bm = fromBinary(s);
    expect(bm.pageCount).toBe(125);
    expect(Array.from(bm.collect())).toEqual([0, 63, 64, 124]);
    expect(bm.ranges()).toEqual([
      { first: 0, count: 1 },
      { first: 63, count: 2 },
      { first: 124, count: 1 },
    ]);
    expect(bm.nextSet(1)).toBe(63);
    expect(bm.nextSet(65)).toBe(124);
    expect(bm.nextSet(125)).toBe(-1);
    bm.dispose();
  });

  it("full bitmap of exactly 512 pages is one run", () => {
    const bm = fromBinary("1".repeat(512));
    expect(bm.count()).toBe(512);
    expect(bm.ranges()).toEqual([{ first: 0, count: 512 }]);
    bm.dispose();
  });

  it("full bitmap of an odd size keeps its padding clear", () => {
    const bm = new DirtyBitmap(k, 1001);
    bm.setRange(0, 1001);
    expect(bm.count()).toBe(1001);
    expect(bm.ranges()).toEqual([{ first: 0, count: 1001 }]);
    const other = fromBinary("1".repeat(1001));
    bm.xor(other);
    expect(bm.count()).toBe(0);
    bm.dispose();
    other.dispose();
  });

  it("set, clear, get on a literal", () => {
    const bm = fromBinary("0b1011".slice(2) + "0".repeat(60) + "1");
    expect(toBinary(bm)).toBe("1011" + "0".repeat(60) + "1");
    bm.clear(2);
    bm.clear(64);
    bm.set(1);
    expect(toBinary(bm)).toBe("1101" + "0".repeat(61));
    bm.dispose();
  });

  it("rejects out-of-range pages and mismatched bitmaps with typed errors", () => {
    const bm = new DirtyBitmap(k, 100);
    const other = new DirtyBitmap(k, 101);
    expect(() => bm.set(100)).toThrowError(expect.objectContaining({ code: "PAGE_INDEX" }));
    expect(() => bm.get(-1)).toThrowError(PagewireError);
    expect(() => bm.setRange(90, 11)).toThrowError(expect.objectContaining({ code: "PAGE_INDEX" }));
    expect(() => bm.or(other)).toThrowError(expect.objectContaining({ code: "BITMAP_MISMATCH" }));
    expect(() => new DirtyBitmap(k, -1)).toThrowError(expect.objectContaining({ code: "PAGE_COUNT" }));
    bm.dispose();
    other.dispose();
  });
});

describe("page kernels", () => {
  it("diffPages and zeroPages match a byte-by-byte oracle, in kernel memory and from plain arrays", () => {
    const r = rng(5);
    const pages = 200;
    const a = new Uint8Array(pages * PAGE_SIZE);
    for (let p = 0; p < pages; p++) {
      const kind = randInt(r, 3); // zero page, a few bytes, full random
      if (kind === 1) for (let j = 0; j < 4; j++) a[p * PAGE_SIZE + randInt(r, PAGE_SIZE)] = 1 + randInt(r, 255);
      if (kind === 2) for (let j = 0; j < PAGE_SIZE; j++) a[p * PAGE_SIZE + j] = randInt(r, 256);
    }
    const b = a.slice();
    for (let p = 0; p < pages; p++) {
      if (r() < 0.3) {
        const at = p * PAGE_SIZE + (r() < 0.3 ? (r() < 0.5 ? 0 : PAGE_SIZE - 1) : randInt(r, PAGE_SIZE));
        b[at] ^= 1 + randInt(r, 255);
      }
    }
    const wantDiff: number[] = [];
    const wantZero: number[] = [];
    for (let p = 0; p < pages; p++) {
      const pa = a.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
      const pb = b.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
      if (pa.some((x, i) => x !== pb[i])) wantDiff.push(p);
      if (pa.every((x) => x === 0)) wantZero.push(p);
    }
    expect(wantDiff.length).toBeGreaterThan(20);
    expect(wantZero.length).toBeGreaterThan(20);

    // plain arrays (copied through scratch)
    const diff = new DirtyBitmap(k, pages);
    expect(k.diffPages(a, b, pages, diff)).toBe(wantDiff.length);
    expect(Array.from(diff.collect())).toEqual(wantDiff);
    const zero = new DirtyBitmap(k, pages);
    expect(k.zeroPages(a, pages, zero)).toBe(wantZero.length);
    expect(Array.from(zero.collect())).toEqual(wantZero);

    // in place in kernel memory, the two arrays one page apart
    const ra = k.alloc(pages * PAGE_SIZE, 64);
    const rb = k.alloc((pages + 1) * PAGE_SIZE, 64);
    k.bytes(ra).set(a);
    k.bytes(rb).set(b, PAGE_SIZE);
    const diff2 = new DirtyBitmap(k, pages);
    expect(k.diffPages(k.bytes(ra), k.bytes(rb).subarray(PAGE_SIZE), pages, diff2)).toBe(wantDiff.length);
    expect(Array.from(diff2.collect())).toEqual(wantDiff);
    for (const p of wantZero) expect(k.isZeroPage(a.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE))).toBe(true);
    for (const p of wantDiff.filter((p) => !wantZero.includes(p)).slice(0, 10)) {
      expect(k.isZeroPage(a.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE))).toBe(false);
    }
    for (const bm of [diff, zero, diff2]) bm.dispose();
    k.free(ra);
    k.free(rb);
  });

  it("a page differing only in its last byte, and pageCount 0, and too-short buffers", () => {
    const a = new Uint8Array(3 * PAGE_SIZE);
    const b = a.slice();
    b[3 * PAGE_SIZE - 1] = 1;
    const d = new DirtyBitmap(k, 3);
    expect(k.diffPages(a, b, 3, d)).toBe(1);
    expect(Array.from(d.collect())).toEqual([2]);
    expect(k.diffPages(a, b, 0, d)).toBe(0);
    expect(() => k.diffPages(a.subarray(1), b, 3, d)).toThrowError(
      expect.objectContaining({ code: "BUFFER_TOO_SHORT" }),
    );
    expect(() => k.zeroPages(a, 4, d)).toThrowError(expect.objectContaining({ code: "BUFFER_TOO_SHORT" }));
    d.dispose();
  });
});

describe("concurrent writer", () => {
  it("a worker sets bits with Atomics while the main thread harvests: the union of harvests is the set written, no bit twice", async () => {
    const pages = 1 << 18;
    const bm = new DirtyBitmap(k, pages, { shared: true });
    const control = new Int32Array(new SharedArrayBuffer(12)); // [0] worker started, [1] worker done, [2] main is harvesting
    // each page written exactly once, in a random order, so neighbouring writes hit the same words as the harvest
    const order = new Uint32Array(pages).map((_, i) => i);
    const r = rng(99);
    for (let i = pages - 1; i > 0; i--) {
      const j = randInt(r, i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    const written = order.filter((_, i) => i % 3 !== 0); // a third never written
    const worker = new Worker(
      `const { workerData } = require("node:worker_threads");
       const { words, control, written } = workerData;
       Atomics.store(control, 0, 1);
       while (Atomics.load(control, 2) === 0) Atomics.wait(control, 2, 0, 10); // start once the harvester runs
       for (let pass = 0; pass < 2; pass++) // the second pass rewrites: must not double count
         for (let i = 0; i < written.length; i++) {
           const p = written[i];
           if (pass === 1 && (p & 7) !== 0) continue;
           Atomics.or(words, p >>> 5, 1 << (p & 31));
         }
       Atomics.store(control, 1, 1);`,
      { eval: true, workerData: { words: bm.sharedWords(), control, written } },
    );
    const exited = new Promise((resolve, reject) => {
      worker.on("exit", resolve);
      worker.on("error", reject);
    });
    const union = new DirtyBitmap(k, pages);
    const overlap = new DirtyBitmap(k, pages);
    const into = new DirtyBitmap(k, pages);
    let harvests = 0;
    let total = 0;
    let rewrites = 0;
    const harvestOnce = () => {
      bm.harvest(into);
      harvests++;
      total += into.count();
      rewrites += overlap.copyFrom(into).and(union).count(); // pages seen before: only rewrites may be
      union.or(into);
    };
    while (Atomics.load(control, 0) === 0) await new Promise((res) => setImmediate(res));
    harvestOnce();
    Atomics.store(control, 2, 1);
    Atomics.notify(control, 2);
    while (Atomics.load(control, 1) === 0) harvestOnce(); // tight loop: both threads run at once
    harvestOnce();
    await exited;
    const want = new DirtyBitmap(k, pages);
    for (const p of written) want.set(p);
    const rewritten = written.filter((p) => (p & 7) === 0).length;
    expect(harvests).toBeGreaterThan(1);
    expect(union.count()).toBe(written.length);
    expect(overlap.copyFrom(union).xor(want).count()).toBe(0);
    expect(rewrites).toBeLessThanOrEqual(rewritten);
    expect(total).toBe(written.length + rewrites);
    expect(bm.count()).toBe(0);
    for (const b of [bm, union, overlap, into, want]) b.dispose();
  });
});

describe("collect and rangePairs into caller arrays", () => {
  it("fill exact-size and larger arrays, plain or in kernel memory, without writing past the result", () => {
    for (const density of [0.001, 0.3, 0.9]) {
      const [bm, o] = randomPair(20011, density, 77);
      const want = o.collect();
      const wantPairs = o.ranges().flatMap((r) => [r.first, r.count]);
      for (const extra of [0, 5]) {
        const plain = new Uint32Array(want.length + extra).fill(0xdeadbeef);
        expect(Array.from(bm.collect(plain))).toEqual(want);
        expect(Array.from(plain.subarray(want.length))).toEqual(new Array(extra).fill(0xdeadbeef));
        const region = k.alloc((want.length + extra) * 4 + 64);
        const view = k.u32(region).subarray(0, want.length + extra);
        k.u32(region).fill(0xdeadbeef);
        expect(Array.from(bm.collect(view))).toEqual(want);
        expect(Array.from(k.u32(region).subarray(want.length))).toEqual(new Array(extra + 16).fill(0xdeadbeef));
        k.free(region);
        const pairs = new Uint32Array(wantPairs.length + extra).fill(7);
        expect(Array.from(bm.rangePairs(pairs))).toEqual(wantPairs);
        expect(Array.from(pairs.subarray(wantPairs.length))).toEqual(new Array(extra).fill(7));
      }
      bm.dispose();
    }
  });
});

describe("collect into a too-short array", () => {
  it("returns a complete new array instead of a truncated one", () => {
    const [bm, o] = randomPair(5000, 0.2, 3);
    const short = new Uint32Array(10);
    expect(Array.from(bm.collect(short))).toEqual(o.collect());
    const region = k.alloc(40);
    expect(Array.from(bm.collect(k.u32(region)))).toEqual(o.collect());
    k.free(region);
    bm.dispose();
  });
});
