// Seeded fuzzing of every decoder (XBZRLE, RLE, single and batch; LZ; the page applier's kernel
// on whole PAGES payloads, at the end): mutated, truncated, spliced and random inputs. Properties: the kernel's answer equals the oracle's, only the
// typed error escapes the public API, nothing outside the target page is written (guard
// bytes around it in kernel memory), a rejected input leaves the page unchanged, and every
// call returns (vitest's timeout catches a hang). FUZZ_INPUTS=20000000 for a long run.
import { beforeAll, describe, expect, it } from "vitest";
import { PageApplier } from "../../src/codec/page-applier.js";
import * as abi from "../../src/kernel/abi.js";
import {
  LzError,
  loadKernel,
  PAGE_SIZE,
  PagewireError,
  RleError,
  WasmGuestMemory,
  XbzrleError,
  type Kernel,
  type KernelRegion,
} from "../../src/index.js";
import { PageRecordWriter, RecordKind } from "../../src/wire/page-record.js";
import { ArrayMemory } from "../support/array-memory.js";
import { makeRepeatPage, makeTextPage, refLzDecode } from "../support/lz-oracle.js";
import { fillRandom, makePair, makeRunPage } from "../support/pairs.js";
import { randInt, rng } from "../support/random.js";
import {
  refRleCheck,
  refRleDecode,
  refXbzrleCheck,
  refXbzrleDecode,
  refXbzrleEncode,
  refRleEncode,
} from "../support/xbzrle-oracle.js";

const TOTAL = Number(process.env.FUZZ_INPUTS ?? 1_000_000);
const GUARD = 256;
const MAX_INPUT = 2 * PAGE_SIZE;

let k: Kernel;
beforeAll(async () => {
  k = await loadKernel();
});

/** Valid encodings to mutate. */
function corpus(kind: "xbzrle" | "rle" | "lz", seed: number): Uint8Array[] {
  const r = rng(seed);
  const out: Uint8Array[] = [];
  const a = new Uint8Array(PAGE_SIZE),
    b = new Uint8Array(PAGE_SIZE);
  while (out.length < 300) {
    if (kind === "lz") {
      [makeRepeatPage, makeTextPage, makeRunPage][out.length % 3](r, a);
      const n = k.lzEncode(a, b);
      if (n > 0) out.push(b.slice(0, n));
    } else if (kind === "xbzrle") {
      makePair(r, a, b);
      const e = refXbzrleEncode(a, b, r() < 0.1 ? PAGE_SIZE + 100 : PAGE_SIZE); // some over 4096 bytes
      if (e instanceof Uint8Array) out.push(e);
    } else {
      makeRunPage(r, a);
      const e = refRleEncode(a, PAGE_SIZE + 100);
      if (e !== -1) out.push(e);
    }
  }
  return out;
}

const INTERESTING = [0, 1, 2, 0x7f, 0x80, 0x81, 0xfe, 0xff, 0x20, 0x40, 0x3f];

/** One fuzz input written into `buf`; returns its length. */
function mutate(r: () => number, seeds: Uint8Array[], buf: Uint8Array): number {
  const byte = () => (r() < 0.5 ? INTERESTING[randInt(r, INTERESTING.length)] : randInt(r, 256));
  const s = seeds[randInt(r, seeds.length)];
  const mode = randInt(r, 8);
  let n: number;
  switch (mode) {
    case 0: {
      // random short input
      n = randInt(r, 48);
      for (let i = 0; i < n; i++) buf[i] = byte();
      return n;
    }
    case 1: // truncated seed
      n = randInt(r, s.length + 1);
      buf.set(s.subarray(0, n));
      return n;
    case 2: {
      // byte flips and sets
      buf.set(s);
      n = s.length;
      const m = 1 + randInt(r, 6);
      for (let t = 0; t < m && n > 0; t++) {
        const at = randInt(r, n);
        buf[at] = r() < 0.5 ? buf[at] ^ (1 << randInt(r, 8)) : byte();
      }
      return n;
    }
    case 3: {
      // insert or delete a few bytes
      const at = randInt(r, s.length + 1);
      if (r() < 0.5) {
        const m = 1 + randInt(r, 4);
        buf.set(s.subarray(0, at));
        for (let t = 0; t < m; t++) buf[at + t] = byte();
        buf.set(s.subarray(at), at + m);
        return Math.min(MAX_INPUT, s.length + m);
      }
      const m = Math.min(s.length - at, 1 + randInt(r, 4));
      buf.set(s.subarray(0, at));
      buf.set(s.subarray(at + m), at);
      return s.length - m;
    }
    case 4: {
      // splice two seeds
      const t = seeds[randInt(r, seeds.length)];
      const a = randInt(r, s.length + 1),
        b = randInt(r, t.length + 1);
      n = Math.min(MAX_INPUT, a + t.length - b);
      buf.set(s.subarray(0, a));
      buf.set(t.subarray(b, b + n - a), a);
      return n;
    }
    case 5: {
      // seed plus a random tail
      const m = 1 + randInt(r, 8);
      buf.set(s);
      for (let t = 0; t < m; t++) buf[s.length + t] = byte();
      return s.length + m;
    }
    case 6: {
      // structured: random lengths (1-3 bytes) with the right or a wrong amount of data
      n = 0;
      const items = 1 + randInt(r, 10);
      for (let t = 0; t < items && n < MAX_INPUT - 8; t++) {
        const v = r() < 0.7 ? randInt(r, 200) : randInt(r, 16384);
        if (v < 0x80 && r() < 0.9) buf[n++] = v;
        else {
          buf[n++] = (v & 0x7f) | 0x80;
          buf[n++] = r() < 0.1 ? 0x80 | randInt(r, 128) : v >> 7;
          if (buf[n - 1] & 0x80) buf[n++] = 1;
        }
        const data = r() < 0.5 ? randInt(r, 16) : 0;
        for (let x = 0; x < data && n < MAX_INPUT; x++) buf[n++] = byte();
      }
      return n;
    }
    default: // the seed as it is
      buf.set(s);
      return s.length;
  }
}

interface Target {
  src: KernelRegion;
  area: KernelRegion; // guard | page | guard
  copy: KernelRegion;
}

function setup(): Target {
  const src = k.alloc(MAX_INPUT + 64, 64);
  const area = k.alloc(GUARD + PAGE_SIZE + GUARD, 64);
  const copy = k.alloc(PAGE_SIZE, 64);
  const a = k.bytes(area);
  for (let i = 0; i < a.length; i++) a[i] = (i * 7) ^ 0x5a;
  k.bytes(copy).set(a.subarray(GUARD, GUARD + PAGE_SIZE));
  return { src, area, copy };
}

function teardown(t: Target): void {
  k.free(t.src);
  k.free(t.area);
  k.free(t.copy);
}

function guardsIntact(area: Uint8Array): boolean {
  for (let i = 0; i < GUARD; i++) if (area[i] !== (((i * 7) ^ 0x5a) & 0xff)) return false;
  for (let i = GUARD + PAGE_SIZE; i < area.length; i++) if (area[i] !== (((i * 7) ^ 0x5a) & 0xff)) return false;
  return true;
}

describe("decoder fuzzing (seeded)", () => {
  it(`XBZRLE decode: ${Math.round(TOTAL * 0.45)} inputs`, () => {
    const n = Math.round(TOTAL * 0.45);
    const seeds = corpus("xbzrle", 1);
    const t = setup();
    const r = rng(0xf00d);
    const src = k.bytes(t.src),
      area = k.bytes(t.area),
      copy = k.bytes(t.copy);
    const page = t.area.ptr + GUARD;
    let accepted = 0;
    try {
      for (let i = 0; i < n; i++) {
        const len = mutate(r, seeds, src);
        const want = refXbzrleCheck(src, len);
        let got: number;
        if (i % 50 === 0) {
          // through the public API with a foreign array: only XbzrleError may escape
          const input = src.slice(0, len);
          const pageView = area.subarray(GUARD, GUARD + PAGE_SIZE);
          try {
            got = k.xbzrleDecode(input, pageView);
          } catch (e) {
            if (!(e instanceof XbzrleError) || e.code !== "XBZRLE_CORRUPT") throw e;
            got = -1;
          }
        } else got = k.raw.xbzrleDecode(t.src.ptr, len, page);
        if (got !== want)
          throw new Error(
            `input ${i} (${len} bytes ${Buffer.from(src.subarray(0, Math.min(len, 24))).toString("hex")}): kernel ${got}, oracle ${want}`,
          );
        if (got < 0) {
          if (k.raw.pagesEqual(page, t.copy.ptr) !== 1) throw new Error(`input ${i}: rejected but the page changed`);
        } else {
          accepted++;
          if (accepted % 16 === 0) {
            const ref = refXbzrleDecode(src.subarray(0, len), copy) as [number, Uint8Array];
            if (!Buffer.from(ref[1]).equals(Buffer.from(area.subarray(GUARD, GUARD + PAGE_SIZE))))
              throw new Error(`input ${i}: decoded page differs from the oracle's`);
          }
          copy.set(area.subarray(GUARD, GUARD + PAGE_SIZE));
        }
        if (i % 4 === 0 && !guardsIntact(area)) throw new Error(`input ${i}: guard bytes overwritten`);
      }
      expect(guardsIntact(area)).toBe(true);
    } finally {
      teardown(t);
    }
    expect(accepted).toBeGreaterThan(n / 20); // the mutations reach the accepting paths too
    expect(accepted).toBeLessThan(n);
  });

  it(`RLE decode: ${Math.round(TOTAL * 0.45)} inputs`, () => {
    const n = Math.round(TOTAL * 0.45);
    const seeds = corpus("rle", 2);
    const t = setup();
    const r = rng(0xbeef);
    const src = k.bytes(t.src),
      area = k.bytes(t.area),
      copy = k.bytes(t.copy);
    const page = t.area.ptr + GUARD;
    let accepted = 0;
    try {
      for (let i = 0; i < n; i++) {
        const len = mutate(r, seeds, src);
        const want = refRleCheck(src, len) ? PAGE_SIZE : -1;
        let got: number;
        if (i % 50 === 0) {
          const input = src.slice(0, len);
          try {
            k.rleDecode(input, area.subarray(GUARD, GUARD + PAGE_SIZE));
            got = PAGE_SIZE;
          } catch (e) {
            if (!(e instanceof RleError) || e.code !== "RLE_CORRUPT") throw e;
            got = -1;
          }
        } else got = k.raw.rleDecode(t.src.ptr, len, page);
        if (got !== want)
          throw new Error(
            `input ${i} (${len} bytes ${Buffer.from(src.subarray(0, Math.min(len, 24))).toString("hex")}): kernel ${got}, oracle ${want}`,
          );
        if (got < 0) {
          if (k.raw.pagesEqual(page, t.copy.ptr) !== 1) throw new Error(`input ${i}: rejected but the page changed`);
        } else {
          accepted++;
          if (accepted % 16 === 0) {
            const ref = refRleDecode(src.subarray(0, len)) as Uint8Array;
            if (!Buffer.from(ref).equals(Buffer.from(area.subarray(GUARD, GUARD + PAGE_SIZE))))
              throw new Error(`input ${i}: decoded page differs from the oracle's`);
          }
          copy.set(area.subarray(GUARD, GUARD + PAGE_SIZE));
        }
        if (i % 4 === 0 && !guardsIntact(area)) throw new Error(`input ${i}: guard bytes overwritten`);
      }
      expect(guardsIntact(area)).toBe(true);
    } finally {
      teardown(t);
    }
    expect(accepted).toBeGreaterThan(n / 50);
    expect(accepted).toBeLessThan(n);
  });

  it(`LZ decode: ${Math.round(TOTAL * 0.1)} inputs`, () => {
    const n = Math.round(TOTAL * 0.1);
    const seeds = corpus("lz", 4);
    const t = setup();
    const r = rng(0x1207);
    const src = k.bytes(t.src),
      area = k.bytes(t.area);
    const page = t.area.ptr + GUARD;
    let accepted = 0;
    try {
      for (let i = 0; i < n; i++) {
        const len = mutate(r, seeds, src);
        const ref = refLzDecode(src, len);
        let got: number;
        if (i % 50 === 0) {
          const input = src.slice(0, len);
          try {
            k.lzDecode(input, area.subarray(GUARD, GUARD + PAGE_SIZE));
            got = PAGE_SIZE;
          } catch (e) {
            if (!(e instanceof LzError) || e.code !== "LZ_CORRUPT") throw e;
            got = -1;
          }
        } else got = k.raw.lzDecode(t.src.ptr, len, page);
        if (got !== (ref ? PAGE_SIZE : -1))
          throw new Error(
            `input ${i} (${len} bytes ${Buffer.from(src.subarray(0, Math.min(len, 24))).toString("hex")}): kernel ${got}, oracle ${ref ? "valid" : "invalid"}`,
          );
        if (!ref) {
          if (k.raw.pagesEqual(page, t.copy.ptr) !== 1) throw new Error(`input ${i}: rejected but the page changed`);
        } else {
          accepted++;
          if (!Buffer.from(ref).equals(Buffer.from(area.subarray(GUARD, GUARD + PAGE_SIZE))))
            throw new Error(`input ${i}: decoded page differs from the oracle's`);
          k.bytes(t.copy).set(ref);
        }
        if (i % 4 === 0 && !guardsIntact(area)) throw new Error(`input ${i}: guard bytes overwritten`);
      }
      expect(guardsIntact(area)).toBe(true);
    } finally {
      teardown(t);
    }
    expect(accepted).toBeGreaterThan(n / 50);
    expect(accepted).toBeLessThan(n);
  });

  for (const codec of ["xbzrle", "rle"] as const) {
    it(`${codec} batch decode: ${Math.round(TOTAL * 0.05)} inputs in batches of 4 pages`, () => {
      const n = Math.round(TOTAL * 0.05);
      const seeds = corpus(codec, 3);
      const r = rng(codec === "xbzrle" ? 77 : 78);
      const BATCH = 4;
      const enc = k.alloc(BATCH * MAX_INPUT, 64);
      const lens = k.alloc(BATCH * 4, 64);
      const area = k.alloc(GUARD + BATCH * PAGE_SIZE + GUARD, 64);
      const before = k.alloc(BATCH * PAGE_SIZE, 64);
      const a = k.bytes(area);
      for (let i = 0; i < a.length; i++) a[i] = (i * 7) ^ 0x5a;
      const e = k.bytes(enc),
        l = new Int32Array(k.memory.buffer, lens.ptr, BATCH),
        b = k.bytes(before);
      const one = new Uint8Array(MAX_INPUT);
      try {
        for (let done = 0; done < n; done += BATCH) {
          let off = 0;
          const valid: boolean[] = [];
          for (let p = 0; p < BATCH; p++) {
            const len = r() < 0.1 ? 0 : mutate(r, seeds, one);
            e.set(one.subarray(0, len), off);
            l[p] = len;
            valid.push(len === 0 || (codec === "xbzrle" ? refXbzrleCheck(one, len) >= 0 : refRleCheck(one, len)));
            off += len;
          }
          b.set(a.subarray(GUARD, GUARD + BATCH * PAGE_SIZE));
          const got =
            codec === "xbzrle"
              ? k.raw.xbzrleDecodePages(enc.ptr, lens.ptr, area.ptr + GUARD, BATCH)
              : k.raw.rleDecodePages(enc.ptr, lens.ptr, area.ptr + GUARD, BATCH);
          const firstBad = valid.indexOf(false);
          if (firstBad < 0) expect(got).toBe(off);
          else {
            if (got !== -1 - firstBad) throw new Error(`batch at ${done}: kernel ${got}, want ${-1 - firstBad}`);
            for (let p = firstBad; p < BATCH; p++) {
              if (k.raw.pagesEqual(area.ptr + GUARD + p * PAGE_SIZE, before.ptr + p * PAGE_SIZE) !== 1)
                throw new Error(`batch at ${done}: page ${p} changed after the bad page`);
            }
          }
          if (!guardsIntactBatch(a, BATCH)) throw new Error(`batch at ${done}: guard bytes overwritten`);
        }
      } finally {
        for (const reg of [enc, lens, area, before]) k.free(reg);
      }
    });
  }
});

/** The guard bytes before and after the `inner` bytes at GUARD are as written. */
function guardsAround(a: Uint8Array, inner: number): boolean {
  for (let i = 0; i < GUARD; i++) if (a[i] !== (((i * 7) ^ 0x5a) & 0xff)) return false;
  for (let i = GUARD + inner; i < a.length; i++) if (a[i] !== (((i * 7) ^ 0x5a) & 0xff)) return false;
  return true;
}

function guardsIntactBatch(a: Uint8Array, pages: number): boolean {
  for (let i = 0; i < GUARD; i++) if (a[i] !== (((i * 7) ^ 0x5a) & 0xff)) return false;
  for (let i = GUARD + pages * PAGE_SIZE; i < a.length; i++) if (a[i] !== (((i * 7) ^ 0x5a) & 0xff)) return false;
  return true;
}

// ---- PAGES payloads through the page applier's kernel ----------------------------------
//
// Mutated payloads of every record kind go to applyPageRecords on guest RAM between guard
// bytes, and to the applier's JS path (readPageRecords and the stages' apply steps) on a
// copy: the kernel must stop with the code that matches the JS path's typed error, after
// the same records, leave the same memory, write nothing outside guest RAM and the digest
// table, and keep table[page] = XXH3-128(page) for every page it hashed. Some inputs also
// go through PageApplier on a WasmGuestMemory: the same typed error as the JS path.

const PAYLOAD_PAGES = 8;
const MAX_PAYLOAD = 4 * PAGE_SIZE;

/** The JS path's error code for each kernel stop (FOREIGN_DEDUP: the JS path knows no other guest). */
const CODE_OF: Record<number, string[]> = {
  [abi.APPLY_FOREIGN_DEDUP]: ["DEDUP_REFERENCE"],
  [abi.APPLY_PAYLOAD_SHORT]: ["RECORD_CORRUPT"],
  [abi.APPLY_HEADER_TRUNCATED]: ["RECORD_CORRUPT"],
  [abi.APPLY_KIND_UNKNOWN]: ["RECORD_CORRUPT"],
  [abi.APPLY_PAGE_RANGE]: ["PAGE_OUT_OF_RANGE"],
  [abi.APPLY_BODY_TRUNCATED]: ["RECORD_CORRUPT"],
  [abi.APPLY_LENGTH]: ["RECORD_CORRUPT", "XBZRLE_OVERSIZE"],
  [abi.APPLY_TRAILING_BYTES]: ["RECORD_CORRUPT"],
  [abi.APPLY_DEDUP_RANGE]: ["PAGE_OUT_OF_RANGE"],
  [abi.APPLY_XBZRLE_CORRUPT]: ["XBZRLE_CORRUPT"],
  [abi.APPLY_RLE_CORRUPT]: ["RLE_CORRUPT"],
  [abi.APPLY_LZ_CORRUPT]: ["LZ_CORRUPT"],
};

/** Valid payloads of 1–4 records of every kind for a guest of PAYLOAD_PAGES pages. */
function payloadCorpus(seed: number): Uint8Array[] {
  const r = rng(seed);
  const out: Uint8Array[] = [];
  const a = new Uint8Array(PAGE_SIZE),
    b = new Uint8Array(PAGE_SIZE);
  const w = new PageRecordWriter(MAX_PAYLOAD);
  while (out.length < 300) {
    w.begin(randInt(r, 4));
    const n = 1 + randInt(r, 4);
    for (let i = 0; i < n; i++) {
      const page = randInt(r, PAYLOAD_PAGES + 1); // sometimes one past the end
      switch (randInt(r, 7)) {
        case 0:
          w.add(RecordKind.ZERO, page);
          break;
        case 1:
          if (r() < 0.3) {
            fillRandom(r, a);
            w.add(RecordKind.RAW, page, a);
          } else w.add(RecordKind.ZERO, page);
          break;
        case 2: {
          makePair(r, a, b);
          const e = refXbzrleEncode(a, b);
          if (e instanceof Uint8Array) w.add(RecordKind.XBZRLE, page, e);
          break;
        }
        case 3: {
          makeRunPage(r, a);
          const e = refRleEncode(a, PAGE_SIZE);
          if (e !== -1) w.add(RecordKind.RLE, page, e);
          break;
        }
        case 4: {
          (r() < 0.5 ? makeTextPage : makeRepeatPage)(r, a);
          const e = k.lzEncode(a, b);
          if (e > 0) w.add(RecordKind.LZ, page, b.subarray(0, e));
          break;
        }
        default:
          w.addDedup(page, r() < 0.1 ? 1 + randInt(r, 3) : 0, randInt(r, PAYLOAD_PAGES + 1));
      }
    }
    if (w.size + 64 <= MAX_PAYLOAD) out.push(w.finish());
  }
  return out;
}

describe("page applier kernel fuzzing (seeded)", () => {
  it(`PAGES payloads: ${Math.round(TOTAL * 0.05)} inputs`, () => {
    const n = Math.round(TOTAL * 0.05);
    const seeds = payloadCorpus(5);
    const r = rng(0xa991);
    const SEED = 0x1234_5678_9abcn;
    const P = PAYLOAD_PAGES;
    const ramArea = k.alloc(GUARD + P * PAGE_SIZE + GUARD, 64);
    const tableArea = k.alloc(GUARD + P * 16 + GUARD, 64);
    const bitsArea = k.alloc(GUARD + 64 + GUARD, 64);
    const input = k.alloc(2 * MAX_PAYLOAD + 64, 64);
    const ctx = k.alloc(abi.APPLY_CONTEXT_BYTES, 64);
    const oracle = new ArrayMemory(P);
    const viaApplier = new WasmGuestMemory(k, P);
    const js = new PageApplier(k, oracle);
    const kernelPath = new PageApplier(k, viaApplier);
    const buf = new Uint8Array(2 * MAX_PAYLOAD + 64);
    const guard = (a: KernelRegion) => {
      const v = k.bytes(a);
      for (let i = 0; i < v.length; i++) v[i] = (i * 7) ^ 0x5a;
    };
    for (const a of [ramArea, tableArea, bitsArea]) guard(a);
    k.bytes(bitsArea).fill(0, GUARD, GUARD + 64); // no page hashed yet
    const ram = () => k.bytes(ramArea).subarray(GUARD, GUARD + P * PAGE_SIZE);
    oracle.bytes.set(ram());
    const hashes = new BigUint64Array(2 * P);
    let applied = 0;
    const stops = new Set<number>();
    try {
      for (let i = 0; i < n; i++) {
        const len = mutate(r, seeds, buf);
        k.bytes(input).set(buf.subarray(0, len));
        if (i % 50 === 0) viaApplier.bytes().set(ram()); // the same memory for PageApplier (below)
        const c = k.u32(ctx);
        c.fill(0);
        c[abi.APPLY_RAM >> 2] = ramArea.ptr + GUARD;
        c[abi.APPLY_PAGE_COUNT >> 2] = P;
        c[abi.APPLY_DIGEST_TABLE >> 2] = tableArea.ptr + GUARD;
        c[abi.APPLY_DIGEST_BITS >> 2] = bitsArea.ptr + GUARD;
        c[abi.APPLY_SEED_LO >> 2] = Number(SEED & 0xffffffffn);
        c[abi.APPLY_SEED_HI >> 2] = Number(SEED >> 32n);
        c[abi.APPLY_OFFSET >> 2] = abi.PAGES_HEADER_BYTES;
        const rc = k.raw.applyPageRecords(ctx.ptr, input.ptr, len);
        const index = k.u32(ctx)[abi.APPLY_INDEX >> 2];
        stops.add(rc);
        // the JS path on the copy
        let seen = 0;
        let err: unknown = null;
        try {
          js.apply(buf.slice(0, len), () => seen++);
        } catch (e) {
          err = e;
        }
        const what = `input ${i} (${len} bytes ${Buffer.from(buf.subarray(0, Math.min(len, 24))).toString("hex")})`;
        if (rc === abi.APPLY_DONE) {
          if (err) throw new Error(`${what}: kernel applied it, the JS path threw ${String(err)}`);
          applied++;
        } else {
          if (!(err instanceof PagewireError) || !CODE_OF[rc]?.includes(err.code))
            throw new Error(`${what}: kernel stopped with ${rc}, the JS path threw ${String(err)}`);
        }
        if (index !== seen) throw new Error(`${what}: kernel stopped at record ${index}, the JS path applied ${seen}`);
        if (!Buffer.from(ram()).equals(Buffer.from(oracle.bytes)))
          throw new Error(`${what}: guest RAM differs from the JS path's`);
        if (i % 4 === 0)
          for (const [a, inner] of [
            [ramArea, P * PAGE_SIZE],
            [tableArea, P * 16],
            [bitsArea, 64],
          ] as const)
            if (!guardsAround(k.bytes(a), inner)) throw new Error(`${what}: guard bytes overwritten`);
        if (i % 64 === 0) {
          // every page the kernel hashed holds the content of that hash
          k.hashPages(ram(), P, hashes, { bits: 128, seed: SEED });
          const table = new BigUint64Array(k.memory.buffer, tableArea.ptr + GUARD, 2 * P);
          const bits = k.u32(bitsArea)[GUARD >> 2];
          for (let p = 0; p < P; p++)
            if ((bits >>> p) & 1 && (table[2 * p] !== hashes[2 * p] || table[2 * p + 1] !== hashes[2 * p + 1]))
              throw new Error(`${what}: the digest table's hash of page ${p} is not its content's`);
        }
        if (i % 50 === 0) {
          // PageApplier on guest RAM in kernel memory, from the same memory: the JS path's typed error and memory
          let e2: unknown = null;
          try {
            kernelPath.apply(buf.slice(0, len));
          } catch (e) {
            e2 = e;
          }
          const same =
            err === null
              ? e2 === null
              : e2 instanceof PagewireError &&
                e2.constructor === (err as Error).constructor &&
                e2.code === (err as PagewireError).code &&
                e2.message === (err as Error).message;
          if (!same) throw new Error(`${what}: PageApplier threw ${String(e2)}, the JS path ${String(err)}`);
          if (!Buffer.from(viaApplier.bytes()).equals(Buffer.from(oracle.bytes)))
            throw new Error(`${what}: PageApplier's memory differs from the JS path's`);
        }
      }
    } finally {
      for (const a of [ramArea, tableArea, bitsArea, input, ctx]) k.free(a);
      viaApplier.dispose();
    }
    expect(applied).toBeGreaterThan(n / 50); // the mutations reach the accepting path
    for (const code of [
      abi.APPLY_DONE,
      abi.APPLY_PAGE_RANGE,
      abi.APPLY_LENGTH,
      abi.APPLY_XBZRLE_CORRUPT,
      abi.APPLY_RLE_CORRUPT,
      abi.APPLY_FOREIGN_DEDUP,
    ])
      expect(stops.has(code), `kernel result ${code} reached`).toBe(true);
  });
});
