// The LZ page codec (assembly/lz.ts): seeded round trips on random, zero-ish, text-like,
// repetitive and real pages (the idle recording); the decoder against the plain-TS oracle
// (test/support/lz-oracle.ts); named rejections; the budget and the early give-up;
// per-call scratch (two tables, two encoders, the same bytes).
import lz4 from "lz4-wasm-nodejs";
import { beforeAll, describe, expect, it } from "vitest";
import { LZ_CORRUPT, LZ_OVERFLOW, LZ_TABLE_BYTES } from "../src/kernel/abi.js";
import { LzError, loadKernel, PAGE_SIZE, type Kernel, type KernelRegion } from "../src/index.js";
import { loadRecording } from "../src/memory/recording.js";
import { makeRepeatPage, makeTextPage, refLzDecode } from "./support/lz-oracle.js";
import { fillRandom, makeRunPage } from "./support/pairs.js";
import { randInt, rng } from "./support/random.js";

let k: Kernel;
let page: KernelRegion;
let out: KernelRegion;
let back: KernelRegion;
let table: KernelRegion;
const realPages: Uint8Array[] = [];
beforeAll(async () => {
  k = await loadKernel();
  page = k.alloc(PAGE_SIZE, PAGE_SIZE);
  out = k.alloc(FULL + 64, 64);
  back = k.alloc(PAGE_SIZE, PAGE_SIZE);
  table = k.alloc(LZ_TABLE_BYTES, 64);
  // every 7th non-zero page of the idle guest's first 64 MiB: kernel text and data, page cache
  const rec = loadRecording("idle");
  for (let p = 0; p < 16384; p += 7) {
    const v = rec.base.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
    if (v.some((b) => b !== 0)) realPages.push(v.slice());
  }
});

/** A budget every page fits in (the grammar's worst case is under 4128 bytes). */
const FULL = 4128;

/** Encodes `p` with budget `dlen`; when it fits, decodes it and checks the page and the oracle. Returns the length. */
function roundTrip(p: Uint8Array, dlen = FULL): number {
  k.bytes(page).set(p);
  const n = k.raw.lzEncode(page.ptr, out.ptr, dlen, table.ptr);
  if (dlen >= FULL) expect(n).toBeGreaterThan(0);
  if (n < 0) return n;
  expect(n).toBeLessThanOrEqual(dlen);
  k.bytes(back).fill(0xa5);
  expect(k.raw.lzDecode(out.ptr, n, back.ptr)).toBe(PAGE_SIZE);
  expect(Buffer.from(k.bytes(back)).equals(Buffer.from(p))).toBe(true);
  const ref = refLzDecode(k.bytes(out).subarray(0, n));
  expect(ref && Buffer.from(ref).equals(Buffer.from(p))).toBe(true);
  return n;
}

describe("LZ round trips", () => {
  const kinds: Record<string, (r: () => number, p: Uint8Array) => void> = {
    random: (r, p) => fillRandom(r, p),
    zero: (_r, p) => p.fill(0),
    "zero-ish": (r, p) => {
      p.fill(0);
      for (let t = randInt(r, 40); t > 0; t--) p[randInt(r, PAGE_SIZE)] = randInt(r, 256);
    },
    text: makeTextPage,
    repetitive: makeRepeatPage,
    runs: makeRunPage,
    "one byte": (r, p) => p.fill(randInt(r, 256)),
    "period 3": (r, p) => {
      const a = [randInt(r, 256), randInt(r, 256), randInt(r, 256)];
      for (let i = 0; i < PAGE_SIZE; i++) p[i] = a[i % 3];
    },
    "random then zeros": (r, p) => {
      p.fill(0);
      fillRandom(r, p.subarray(0, 4 * randInt(r, 1024)));
    },
    "zeros then random": (r, p) => {
      p.fill(0);
      const at = 4 * randInt(r, 1024);
      fillRandom(r, p.subarray(at));
    },
  };
  for (const [name, make] of Object.entries(kinds)) {
    it(`${name} pages round-trip with every budget the encoder accepts`, () => {
      const r = rng(name.length * 977);
      const p = new Uint8Array(PAGE_SIZE);
      for (let t = 0; t < 60; t++) {
        make(r, p);
        const full = roundTrip(p);
        // a budget changes only whether the encoder gives up, never its bytes; under the full length it fails
        const b = 1 + randInt(r, PAGE_SIZE);
        const n = roundTrip(p, b);
        if (full > 0 && b < full) expect(n).toBe(LZ_OVERFLOW);
        else expect([LZ_OVERFLOW, full]).toContain(n);
        if (full > 0) expect(k.raw.lzEncode(page.ptr, out.ptr, full - 1, table.ptr)).toBe(LZ_OVERFLOW);
      }
    });
  }

  it("shrinks what it should: zero and one-byte pages to a few bytes, text about as lz4 does", () => {
    expect(roundTrip(new Uint8Array(PAGE_SIZE))).toBeLessThan(16);
    expect(roundTrip(new Uint8Array(PAGE_SIZE).fill(0xcc))).toBeLessThan(16);
    const p = new Uint8Array(PAGE_SIZE);
    makeTextPage(rng(5), p);
    expect(roundTrip(p)).toBeLessThan(1.1 * lz4.compress(p).length);
    expect(roundTrip(p)).toBeLessThan(0.6 * PAGE_SIZE);
  });

  it("random pages cost at most 3 bytes more than the page (no match found), and give up under a 3/4-page budget", () => {
    const r = rng(9);
    const p = new Uint8Array(PAGE_SIZE);
    for (let t = 0; t < 20; t++) {
      fillRandom(r, p);
      const n = roundTrip(p);
      expect(n).toBeGreaterThan(PAGE_SIZE);
      expect(n).toBeLessThanOrEqual(PAGE_SIZE + 3);
      expect(roundTrip(p, 3072)).toBe(LZ_OVERFLOW);
    }
  });

  it("real pages (idle recording) round-trip, within 5% of lz4's total on the same pages", () => {
    let ours = 0;
    let theirs = 0;
    for (const p of realPages) {
      const n = roundTrip(p);
      ours += Math.min(n, PAGE_SIZE);
      theirs += Math.min(lz4.compress(p).length, PAGE_SIZE);
    }
    expect(realPages.length).toBeGreaterThan(500);
    expect(ours / theirs).toBeLessThan(1.05);
    expect(ours).toBeLessThan(0.7 * realPages.length * PAGE_SIZE);
  });

  it("stays under 4128 bytes on a page built for the worst case (long literal runs, 4-byte matches)", () => {
    const r = rng(21);
    const p = new Uint8Array(PAGE_SIZE);
    let worst = 0;
    for (let t = 0; t < 50; t++) {
      fillRandom(r, p);
      const run = 143 + randInt(r, 4);
      for (let x = run; x + 4 <= PAGE_SIZE; x += run + 4) p.copyWithin(x, x - run, x - run + 4);
      worst = Math.max(worst, roundTrip(p));
    }
    expect(worst).toBeGreaterThan(PAGE_SIZE + 3);
    expect(worst).toBeLessThan(FULL);
  });

  it("depends on nothing but the page: the same bytes from a dirty table or another table", () => {
    const r = rng(3);
    const p = new Uint8Array(PAGE_SIZE);
    const other = k.alloc(LZ_TABLE_BYTES, 64);
    const out2 = k.alloc(FULL + 64, 64);
    try {
      for (let t = 0; t < 40; t++) {
        makeRepeatPage(r, p);
        k.bytes(page).set(p);
        k.bytes(other).fill(randInt(r, 256)); // garbage a previous page could have left
        const a = k.raw.lzEncode(page.ptr, out.ptr, FULL, table.ptr);
        const b = k.raw.lzEncode(page.ptr, out2.ptr, FULL, other.ptr);
        expect(b).toBe(a);
        expect(Buffer.from(k.bytes(out2).subarray(0, b)).equals(Buffer.from(k.bytes(out).subarray(0, a)))).toBe(true);
      }
    } finally {
      k.free(other);
      k.free(out2);
    }
  });

  it("writes no more than the budget: bytes past dlen stay as they were", () => {
    const r = rng(4);
    const p = new Uint8Array(PAGE_SIZE);
    for (let t = 0; t < 200; t++) {
      (t & 1 ? makeTextPage : makeRepeatPage)(r, p);
      k.bytes(page).set(p);
      const dlen = 1 + randInt(r, 2500);
      const o = k.bytes(out);
      o.fill(0x77);
      k.raw.lzEncode(page.ptr, out.ptr, dlen, table.ptr);
      for (let i = dlen; i < o.length; i++) if (o[i] !== 0x77) throw new Error(`dlen ${dlen}: byte ${i} written`);
    }
  });

  it("through the public API: k.lzEncode / k.lzDecode on plain arrays", () => {
    const p = new Uint8Array(PAGE_SIZE);
    makeTextPage(rng(8), p);
    const enc = new Uint8Array(PAGE_SIZE);
    const n = k.lzEncode(p, enc);
    expect(n).toBeGreaterThan(0);
    const q = new Uint8Array(PAGE_SIZE);
    k.lzDecode(enc.subarray(0, n), q);
    expect(q).toEqual(p);
    expect(k.lzEncode(p, new Uint8Array(10))).toBe(-1);
  });
});

describe("LZ decoder rejections (nothing written)", () => {
  const lit = (n: number) => new Uint8Array(n).fill(0x41);
  const cases: [string, number[]][] = [
    ["empty input", []],
    ["a lone token with nothing after it", [0x10]],
    ["literals that stop short of their count", [0x30, 1, 2]],
    ["a truncated literal ext", [0xf0]],
    ["a 2-byte ext cut after its first byte", [0xf0, 0x80]],
    ["a non-canonical 2-byte ext (second byte 0)", [0xf0, 0x81, 0x00]],
    ["an ext with a third byte", [0xf0, 0x81, 0x80, 0x01]],
    ["a match at distance 0", [0x10, 0x41, 0x00, 0x00]],
    ["a match before the page start", [0x10, 0x41, 0x02, 0x00]],
    ["a truncated distance", [0x10, 0x41, 0x01]],
    ["a match past the page end", [0x1f, 0x41, 0x01, 0x00, 0x80, 0x20]],
    ["literals past the page end", [0xf0, 0xf2, 0x1f, ...lit(4082)]],
    ["a last sequence with a match nibble", [0xf1, 0xf1, 0x1f, ...lit(4096)]],
    ["bytes after the page is covered", [0xf0, 0xf1, 0x1f, ...lit(4096), 0x00]],
    ["a page not covered when the input ends", [0x1f, 0x41, 0x01, 0x00, 0xff, 0x1e]],
    ["a match that ends the page, then more input", [0x1f, 0x41, 0x01, 0x00, 0xec, 0x1f, 0x00]],
  ];
  for (const [name, bytes] of cases) {
    it(name, () => {
      const src = Uint8Array.from(bytes);
      expect(refLzDecode(src)).toBeNull();
      const p = new Uint8Array(PAGE_SIZE).fill(0x3c);
      expect(() => k.lzDecode(src, p)).toThrow(expect.objectContaining({ code: "LZ_CORRUPT" }));
      expect(() => k.lzDecode(src, p)).toThrow(LzError);
      expect(p.every((b) => b === 0x3c)).toBe(true);
      const s = k.alloc(Math.max(src.length, 1), 64);
      try {
        k.bytes(s).set(src);
        expect(k.raw.lzCheck(s.ptr, src.length)).toBe(0);
        expect(k.raw.lzDecode(s.ptr, src.length, back.ptr)).toBe(LZ_CORRUPT);
      } finally {
        k.free(s);
      }
    });
  }

  it("accepts the hand-written encodings next to them", () => {
    // one literal, then a run of 4095 from distance 1: ext 4095 - 19 = 4076
    const run = Uint8Array.from([0x1f, 0x41, 0x01, 0x00, 0xec, 0x1f]);
    const p = new Uint8Array(PAGE_SIZE);
    k.lzDecode(run, p);
    expect(p.every((b) => b === 0x41)).toBe(true);
    // all literals: ext 4096 - 15 = 4081
    const all = Uint8Array.from([0xf0, 0xf1, 0x1f, ...lit(4096)]);
    k.lzDecode(all, p);
    expect(refLzDecode(all)).toEqual(p);
  });
});
