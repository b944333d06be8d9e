import { beforeAll, describe, expect, it } from "vitest";
import { loadKernel, PAGE_SIZE, PagewireRangeError, RleError, type Kernel } from "../src/index.js";
import { fillRandom, makeRunPage } from "./support/pairs.js";
import { rng } from "./support/random.js";
import { refRleDecode, refRleEncode } from "./support/xbzrle-oracle.js";

/** Random pages checked against the oracle; RLE_PAGES=1000000 for a long run. */
const PAGES = Number(process.env.RLE_PAGES ?? 30_000);

let k: Kernel;
beforeAll(async () => {
  k = await loadKernel();
});

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function encode(page: Uint8Array, limit = PAGE_SIZE): Uint8Array | -1 {
  const out = new Uint8Array(limit);
  const n = k.rleEncode(page, out);
  return n < 0 ? -1 : out.slice(0, n);
}

function roundTrip(page: Uint8Array): Uint8Array {
  const enc = encode(page);
  if (enc === -1) throw new Error("overflow");
  const back = new Uint8Array(PAGE_SIZE).fill(0x55);
  k.rleDecode(enc, back);
  expect(hex(back)).toBe(hex(page));
  return enc;
}

describe("named cases", () => {
  it("a zero page is one run: 81 40 00", () => {
    expect(hex(roundTrip(new Uint8Array(PAGE_SIZE)))).toBe("814000");
  });
  it("a freed page (0xcc) is one run", () => {
    expect(hex(roundTrip(new Uint8Array(PAGE_SIZE).fill(0xcc)))).toBe("8140cc");
  });
  it("object data then 0xcc poison: a literal and a run", () => {
    const p = new Uint8Array(PAGE_SIZE).fill(0xcc);
    for (let i = 0; i < 100; i++) p[i] = i + 1;
    const enc = roundTrip(p);
    // literal of 100 (header 200 = c8 01), bytes, run of 3996 (header 7993 = b9 3e), cc
    expect(hex(enc.subarray(0, 2))).toBe("c801");
    expect(hex(enc.subarray(102))).toBe("b93ecc");
  });
  it("a run of 7 stays in a literal, a run of 8 is a run", () => {
    const p = new Uint8Array(PAGE_SIZE);
    for (let i = 0; i < PAGE_SIZE; i++) p[i] = i & 1 ? 0x11 : 0x22; // no runs at all
    p.fill(0x77, 100, 107); // 7
    p.fill(0x88, 200, 208); // 8
    const enc = roundTrip(p);
    const want = refRleEncode(p);
    expect(want).not.toBe(-1);
    expect(hex(enc)).toBe(hex(want as Uint8Array));
    expect(hex(enc)).toContain("1188"); // run header (8 << 1 | 1 = 0x11) then the byte
  });
  it("a run of exactly 8 at the page end", () => {
    const p = new Uint8Array(PAGE_SIZE);
    fillRandom(rng(3), p);
    p.fill(0xab, PAGE_SIZE - 8);
    p[PAGE_SIZE - 9] = 0x00;
    const enc = roundTrip(p);
    expect(hex(enc.subarray(enc.length - 2))).toBe("11ab");
  });
  it("a random page overflows (-1): send it raw", () => {
    const p = new Uint8Array(PAGE_SIZE);
    fillRandom(rng(4), p);
    expect(encode(p)).toBe(-1);
    expect(refRleEncode(p)).toBe(-1);
  });
  it("a short out overflows without writing past it", () => {
    const p = new Uint8Array(PAGE_SIZE).fill(1);
    p[10] = 2;
    const big = new Uint8Array(64).fill(0xee);
    expect(k.rleEncode(p, big.subarray(0, 5))).toBe(-1);
    expect(big.subarray(5).every((b) => b === 0xee)).toBe(true);
  });
});

describe("decoder rejects malformed input with RleError, page unchanged", () => {
  const cases: Array<[string, number[]]> = [
    ["empty input", []],
    ["truncated 2-byte length", [0x81]],
    ["3-byte length", [0x81, 0x80, 0x01, 0]],
    ["non-canonical length", [0x81, 0x00, 0]],
    ["n = 0 run", [0x01, 0x00]],
    ["n = 0 literal", [0x00]],
    ["run past the page", [0x83, 0x40, 0]],
    ["literal past the input", [0x80, 0x40, 1, 2, 3]],
    ["run without its byte", [0x81, 0x40]],
    ["page not covered", [0x81, 0x3f, 0]],
    ["bytes after the page", [0x81, 0x40, 0, 0x03, 0]],
  ];
  for (const [name, bytes] of cases) {
    it(name, () => {
      const page = new Uint8Array(PAGE_SIZE).fill(0x5a);
      let err: unknown;
      try {
        k.rleDecode(Uint8Array.from(bytes), page);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(RleError);
      expect((err as RleError).code).toBe("RLE_CORRUPT");
      expect(page.every((b) => b === 0x5a)).toBe(true);
      expect(refRleDecode(Uint8Array.from(bytes))).toBe(-1);
    });
  }
  it("accepts a non-greedy but valid encoding (two adjacent runs)", () => {
    const page = new Uint8Array(PAGE_SIZE);
    k.rleDecode(Uint8Array.from([0x81, 0x20, 7, 0x81, 0x20, 9]), page);
    expect([page[0], page[2047], page[2048], page[4095]]).toEqual([7, 7, 9, 9]);
  });
});

describe("seeded random pages against the plain-TS oracle", () => {
  it(`${PAGES} pages: identical encodings, round trips through the batch API`, () => {
    const BATCH = 128;
    const pagesR = k.alloc(BATCH * PAGE_SIZE, 64);
    const outR = k.alloc(BATCH * PAGE_SIZE + 64, 64);
    const lenR = k.alloc(BATCH * 4, 64);
    const decR = k.alloc(BATCH * PAGE_SIZE, 64);
    const r = rng(777);
    let done = 0,
      overflow = 0;
    try {
      while (done < PAGES) {
        const n = Math.min(BATCH, PAGES - done);
        const pages = k.bytes(pagesR);
        for (let p = 0; p < n; p++) {
          const page = pages.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
          const kind = r();
          if (kind < 0.8) makeRunPage(r, page);
          else if (kind < 0.9) {
            page.fill(r() < 0.5 ? 0 : 0xcc);
            const m = Math.floor(r() * 50);
            for (let t = 0; t < m; t++) page[Math.floor(r() * PAGE_SIZE)] = Math.floor(r() * 256);
          } else fillRandom(r, page);
        }
        const total = k.raw.rleEncodePages(pagesR.ptr, n, outR.ptr, lenR.ptr);
        const out = k.bytes(outR);
        const lengths = new Int32Array(k.memory.buffer, lenR.ptr, n);
        let off = 0;
        for (let p = 0; p < n; p++) {
          const want = refRleEncode(pages.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE));
          if (want === -1) {
            if (lengths[p] !== -1) throw new Error(`page ${done + p}: kernel ${lengths[p]}, oracle -1`);
            overflow++;
            continue;
          }
          if (lengths[p] !== want.length || hex(out.subarray(off, off + want.length)) !== hex(want))
            throw new Error(`page ${done + p}: kernel ${lengths[p]} bytes, oracle ${want.length}`);
          off += want.length;
        }
        expect(total).toBe(off);
        expect(k.raw.rleDecodePages(outR.ptr, lenR.ptr, decR.ptr, n)).toBe(total);
        for (let p = 0; p < n; p++) {
          if (lengths[p] > 0 && k.raw.pagesEqual(decR.ptr + p * PAGE_SIZE, pagesR.ptr + p * PAGE_SIZE) !== 1)
            throw new Error(`page ${done + p}: round trip differs`);
        }
        done += n;
      }
    } finally {
      for (const reg of [pagesR, outR, lenR, decR]) k.free(reg);
    }
    expect(overflow).toBeGreaterThan(PAGES / 20);
    expect(overflow).toBeLessThan(PAGES / 2);
  });
});

describe("batch API", () => {
  it("encodes and decodes packed pages with plain arrays; names the first bad page", () => {
    const r = rng(11);
    const n = 10;
    const pages = new Uint8Array(n * PAGE_SIZE);
    for (let p = 0; p < n; p++) makeRunPage(r, pages.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE));
    fillRandom(r, pages.subarray(3 * PAGE_SIZE, 4 * PAGE_SIZE)); // overflows
    const out = new Uint8Array(n * PAGE_SIZE);
    const lengths = new Int32Array(n);
    const total = k.rleEncodePages(pages, n, out, lengths);
    expect(lengths[3]).toBe(-1);
    const back = new Uint8Array(n * PAGE_SIZE);
    expect(k.rleDecodePages(out, lengths, back, n)).toBe(total);
    for (let p = 0; p < n; p++)
      if (p !== 3)
        expect(hex(back.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE))).toBe(
          hex(pages.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE)),
        );
    // corrupt page 5's encoding: its first length byte becomes 0 (n = 0 literal)
    let off = 0;
    for (let p = 0; p < 5; p++) if (lengths[p] > 0) off += lengths[p];
    out[off] = 0;
    const again = new Uint8Array(n * PAGE_SIZE);
    let err: unknown;
    try {
      k.rleDecodePages(out, lengths, again, n);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RleError);
    expect((err as RleError).page).toBe(5);
    expect(again.subarray(5 * PAGE_SIZE).every((b) => b === 0)).toBe(true);
    expect(() => k.rleDecodePages(out, new Int32Array(n), again, n)).toThrow(PagewireRangeError);
  });
});
