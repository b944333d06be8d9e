import { createXXHash128, createXXHash3, type IHasher } from "hash-wasm";
import { beforeAll, describe, expect, it } from "vitest";
import { createKernel, hashPageList, loadKernel, PAGE_SIZE, PagewireError, type Kernel } from "../src/index.js";
import { randInt, rng } from "./support/random.js";

let k: Kernel;
beforeAll(async () => {
  k = await loadKernel();
});

const hasher64 = new Map<bigint, IHasher>();
const hasher128 = new Map<bigint, IHasher>();
async function ref64(data: Uint8Array, seed: bigint): Promise<bigint> {
  let h = hasher64.get(seed);
  if (!h) hasher64.set(seed, (h = await createXXHash3(Number(seed & 0xffffffffn), Number(seed >> 32n))));
  h.init();
  h.update(data);
  return BigInt("0x" + h.digest("hex"));
}
async function ref128(data: Uint8Array, seed: bigint): Promise<{ low: bigint; high: bigint }> {
  let h = hasher128.get(seed);
  if (!h) hasher128.set(seed, (h = await createXXHash128(Number(seed & 0xffffffffn), Number(seed >> 32n))));
  h.init();
  h.update(data);
  const v = BigInt("0x" + h.digest("hex"));
  return { low: v & 0xffffffffffffffffn, high: v >> 64n };
}

function randomBytes(n: number, seed: number): Uint8Array {
  const r = rng(seed);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = randInt(r, 256);
  return b;
}

const SEEDS = [0n, 1n, 0xdeadbeefn, 0x9e3779b97f4a7c15n, 0xffffffffffffffffn];
// every length class of XXH3: 0, 1-3, 4-8, 9-16, 17-128, 129-240, long (block and stripe edges)
const LENGTHS = [
  0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 65, 96, 97, 127, 128, 129, 159, 160, 191, 200, 239, 240, 241,
  255, 256, 257, 511, 1023, 1024, 1025, 1087, 1088, 2047, 2048, 3000, 4095, 4096, 4097, 8192, 10000,
];

describe("XXH3 compatibility with hash-wasm", () => {
  it("matches XXH3-64 and XXH3-128 on every length class and seed", async () => {
    for (const seed of SEEDS) {
      for (const len of LENGTHS) {
        const data = randomBytes(len, len * 7 + 1);
        expect(k.hashPage(data, seed), `64 len ${len} seed ${seed}`).toBe(await ref64(data, seed));
        expect(k.hashPage128(data, seed), `128 len ${len} seed ${seed}`).toEqual(await ref128(data, seed));
      }
    }
  });

  it("matches on all lengths 0..300 (seed 0 and one seed)", async () => {
    const data = randomBytes(300, 5);
    for (const seed of [0n, 0x123456789abcdefn]) {
      for (let len = 0; len <= 300; len++) {
        const d = data.subarray(0, len);
        expect(k.hashPage(d, seed)).toBe(await ref64(d, seed));
        expect(k.hashPage128(d, seed)).toEqual(await ref128(d, seed));
      }
    }
  });

  it("matches on realistic page content: zero, sparse, text-like, random", async () => {
    const r = rng(77);
    const pages: Uint8Array[] = [new Uint8Array(PAGE_SIZE), randomBytes(PAGE_SIZE, 9)];
    const sparse = new Uint8Array(PAGE_SIZE);
    for (let i = 0; i < 40; i++) sparse[randInt(r, PAGE_SIZE)] = randInt(r, 256);
    pages.push(sparse, new TextEncoder().encode("pagewire ".repeat(456)).subarray(0, PAGE_SIZE));
    for (const p of pages) {
      expect(k.hashPage(p)).toBe(await ref64(p, 0n));
      expect(k.hashPage(p, 42n)).toBe(await ref64(p, 42n));
    }
  });
});

describe("hashPages (batch)", () => {
  const COUNT = 37;
  const pages = randomBytes(COUNT * PAGE_SIZE, 1234);
  pages.fill(0, 3 * PAGE_SIZE, 4 * PAGE_SIZE); // one zero page

  it("writes one u64 per page for 64 bits, equal to the reference", async () => {
    for (const seed of [0n, 0xabcdef0123456789n]) {
      const out = k.hashPages(pages, COUNT, new BigUint64Array(COUNT), { bits: 64, seed });
      for (let i = 0; i < COUNT; i++)
        expect(out[i]).toBe(await ref64(pages.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE), seed));
    }
  });

  it("writes low, high per page for 128 bits, equal to the reference", async () => {
    const seed = 7n;
    const out = k.hashPages(pages, COUNT, new BigUint64Array(2 * COUNT), { bits: 128, seed });
    for (let i = 0; i < COUNT; i++) {
      expect({ low: out[2 * i], high: out[2 * i + 1] }).toEqual(
        await ref128(pages.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE), seed),
      );
    }
  });

  it("works in place on kernel memory and leaves words past count alone", () => {
    const r = k.alloc(COUNT * PAGE_SIZE + 4096, 64);
    const o = k.alloc(8 * (COUNT + 1), 64);
    try {
      k.bytes(r).set(pages);
      const out = new BigUint64Array(k.memory.buffer, o.ptr, COUNT + 1);
      out[COUNT] = 0x5555n;
      k.hashPages(k.bytes(r), COUNT, out);
      const copy = k.hashPages(pages, COUNT, new BigUint64Array(COUNT));
      expect(Array.from(new BigUint64Array(k.memory.buffer, o.ptr, COUNT))).toEqual(Array.from(copy));
      expect(new BigUint64Array(k.memory.buffer, o.ptr, COUNT + 1)[COUNT]).toBe(0x5555n);
    } finally {
      k.free(r);
      k.free(o);
    }
  });

  it("hashPageList gathers pages by index", () => {
    const idx = Uint32Array.of(5, 0, 36, 5, 3);
    const all = k.hashPages(pages, COUNT, new BigUint64Array(2 * COUNT), { bits: 128, seed: 3n });
    const got = hashPageList(k, pages, idx, new BigUint64Array(2 * idx.length), { bits: 128, seed: 3n });
    idx.forEach((p, i) => {
      expect(got[2 * i]).toBe(all[2 * p]);
      expect(got[2 * i + 1]).toBe(all[2 * p + 1]);
    });
  });

  it("a one-byte change changes the page hash; seeds give different hashes", () => {
    const p = pages.slice(0, PAGE_SIZE);
    const h = k.hashPage(p);
    p[4095] ^= 1;
    expect(k.hashPage(p)).not.toBe(h);
    expect(k.hashPage(p, 1n)).not.toBe(k.hashPage(p, 2n));
  });

  it("the shared-memory build hashes identically", async () => {
    const ks = await createKernel({ shared: true });
    expect(ks.shared).toBe(true);
    const seed = 0xfeedn;
    const a = k.hashPages(pages, COUNT, new BigUint64Array(2 * COUNT), { bits: 128, seed });
    const b = ks.hashPages(pages, COUNT, new BigUint64Array(2 * COUNT), { bits: 128, seed });
    expect(Array.from(b)).toEqual(Array.from(a));
    expect(ks.hashPage(pages.subarray(0, 100), seed)).toBe(k.hashPage(pages.subarray(0, 100), seed));
  });

  it("rejects bad arguments with typed errors", () => {
    const out = new BigUint64Array(4);
    expect(() => k.hashPages(pages, 5, out)).toThrow(PagewireError);
    expect(() => k.hashPages(pages.subarray(0, 100), 1, out)).toThrow(/need 4096 bytes/);
    expect(() => k.hashPages(pages, 1, out, { bits: 32 as 64 })).toThrow(/bits must be 64 or 128/);
    expect(() => k.hashPage(pages, -1n)).toThrow(/seed/);
    expect(() => k.hashPage(pages, 1n << 64n)).toThrow(/seed/);
    expect(() => hashPageList(k, pages, Uint32Array.of(COUNT), out)).toThrow(/outside/);
  });
});
