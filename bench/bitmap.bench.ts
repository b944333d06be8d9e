// Dirty-bitmap and page-scan kernels against memcpy of the same bytes, plain JS and
// roaring-wasm, in one process.  Run: npx tsx bench/bitmap.bench.ts [--quick]
import RoaringWasm from "roaring-wasm";
import { DirtyBitmap, loadKernel, PAGE_SIZE, type Kernel } from "../src/index.js";
import {
  mbps,
  printTable,
  printTargets,
  round,
  target,
  time,
  timeMemcpy,
  verify,
  writeResults,
  type Target,
  type Timing,
  QUICK,
  rng,
} from "./harness.js";

const BITMAP_PAGES = 1 << 24; // a 64 GiB guest
const DENSITIES = [0.0005, 0.01, 0.1, 0.5];
const SCAN_PAGES = QUICK ? 16384 : 65536; // 256 MiB of pages (64 MiB with --quick)

// ---- plain-JS versions (the obvious loops a JS tool would write) -------------------------

function popcount32(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

function jsCount(w: Uint32Array): number {
  let c = 0;
  for (let i = 0; i < w.length; i++) if (w[i] !== 0) c += popcount32(w[i]);
  return c;
}

function jsCollect(w: Uint32Array, out: Uint32Array): number {
  let n = 0;
  for (let i = 0; i < w.length; i++) {
    let x = w[i];
    while (x !== 0) {
      const low = x & -x;
      out[n++] = (i << 5) + 31 - Math.clz32(low);
      x ^= low;
    }
  }
  return n;
}

function jsRanges(w: Uint32Array, out: Uint32Array): number {
  let n = 0;
  let start = -1;
  for (let i = 0; i < w.length; i++) {
    const x = w[i];
    if (start < 0 ? x === 0 : x === 0xffffffff) continue; // no boundary in this word
    for (let b = 0; b < 32; b++) {
      const set = (x >>> b) & 1;
      if (set && start < 0) start = i * 32 + b;
      else if (!set && start >= 0) {
        out[n++] = start;
        out[n++] = i * 32 + b - start;
        start = -1;
      }
    }
  }
  if (start >= 0) {
    out[n++] = start;
    out[n++] = w.length * 32 - start;
  }
  return n >>> 1;
}

function jsHarvest(src: Uint32Array, dst: Uint32Array): number {
  let c = 0;
  for (let i = 0; i < src.length; i++) {
    const v = src[i];
    dst[i] = v;
    if (v !== 0) {
      src[i] = 0;
      c += popcount32(v);
    }
  }
  return c;
}

function jsPagesDiffer(a: Int32Array, b: Int32Array, page: number): boolean {
  const end = (page + 1) * (PAGE_SIZE >> 2);
  for (let i = page * (PAGE_SIZE >> 2); i < end; i++) if (a[i] !== b[i]) return true;
  return false;
}

function jsPageIsZero(a: Int32Array, page: number): boolean {
  const end = (page + 1) * (PAGE_SIZE >> 2);
  for (let i = page * (PAGE_SIZE >> 2); i < end; i++) if (a[i] !== 0) return false;
  return true;
}

// ---- suites ------------------------------------------------------------------------------

interface Row {
  [k: string]: string | number;
}

function bitmapSuite(k: Kernel, roaring: typeof RoaringWasm, rows: Row[], targets: Target[]): void {
  const bm = new DirtyBitmap(k, BITMAP_PAGES);
  const spare = new DirtyBitmap(k, BITMAP_PAGES);
  const bytes = bm.byteLength;
  const memcpy = timeMemcpy(bytes);
  rows.push(row("memcpy (bitmap bytes)", "-", bytes, memcpy, memcpy));
  for (const density of DENSITIES) {
    // seeded random bits, set through the JS words view
    const r = rng(Math.round(density * 1e6));
    const words = bm.sharedWords();
    words.fill(0);
    const expected: number[] = [];
    for (let i = 0; i < BITMAP_PAGES; i++) if (r() < density) expected.push(i);
    for (const i of expected) words[i >>> 5] |= 1 << (i & 31);
    const plain = words.slice(); // plain-JS copy of the same bits
    const out = new Uint32Array(expected.length);
    const pairs = new Uint32Array(expected.length * 2 + 2);
    const d = `${density * 100}%`;

    // verify every implementation before timing it
    verify(`count ${d}`, bm.count(), expected.length);
    verify(`jsCount ${d}`, jsCount(plain), expected.length);
    const collected = bm.collect();
    verify(`collect ${d}`, collected.length === expected.length && collected.every((v, i) => v === expected[i]), true);
    verify(`jsCollect ${d}`, jsCollect(plain, out) === expected.length && out.every((v, i) => v === expected[i]), true);
    const kernelPairs = bm.rangePairs();
    const jsRangeCount = jsRanges(plain, pairs);
    verify(`ranges ${d}`, Array.from(kernelPairs), Array.from(pairs.subarray(0, jsRangeCount * 2)));
    const rb = new roaring.RoaringBitmap32(expected);
    verify(
      `roaring ${d}`,
      rb.toUint32Array().every((v, i) => v === expected[i]),
      true,
    );

    const ns = (t: Timing) => round((t.seconds / Math.max(1, expected.length)) * 1e9, 2);
    const tCount = time(`count ${d}`, () => bm.count());
    const tJsCount = time(`js count ${d}`, () => jsCount(plain));
    const outRegion = k.alloc(expected.length * 4 + 64, 64);
    const tCollect = time(`collect ${d}`, () => bm.collect(k.u32(outRegion)));
    k.free(outRegion);
    const tJsCollect = time(`js collect ${d}`, () => jsCollect(plain, out));
    const tRoaring = time(`roaring-wasm toUint32Array ${d}`, () => rb.toUint32Array(out));
    const pairsRegion = k.alloc(pairs.byteLength, 64);
    const tRanges = time(`ranges ${d}`, () => bm.rangePairs(k.u32(pairsRegion)));
    k.free(pairsRegion);
    const tJsRanges = time(`js ranges ${d}`, () => jsRanges(plain, pairs));
    // harvest: the timed op moves the bits out; put them back untimed-cheaply by harvesting back
    const tHarvest = time(
      `harvest ${d}`,
      () => {
        bm.harvest(spare);
        spare.harvest(bm);
      },
      undefined,
    );
    const jsSrc = plain.slice();
    const jsDst = new Uint32Array(plain.length);
    const tJsHarvest = time(`js harvest ${d}`, () => {
      jsHarvest(jsSrc, jsDst);
      jsHarvest(jsDst, jsSrc);
    });
    verify(`harvest round trip ${d}`, bm.count(), expected.length);
    rb.dispose();

    const half = (t: Timing): Timing => ({ ...t, seconds: t.seconds / 2 }); // two harvests per op
    rows.push(row("count", d, bytes, tCount, memcpy, tJsCount));
    rows.push(row("collect", d, bytes, tCollect, memcpy, tJsCollect, tRoaring, ns(tCollect)));
    rows.push(row("ranges", d, bytes, tRanges, memcpy, tJsRanges));
    rows.push(row("harvest", d, bytes, half(tHarvest), memcpy, half(tJsHarvest)));

    targets.push(target(`count ${d}: × memcpy`, memcpy.seconds / tCount.seconds, ">=", 2.0));
    if (density === 0.0005)
      targets.push(target(`collect ${d}: × memcpy`, memcpy.seconds / tCollect.seconds, ">=", 0.8));
    if (density === 0.01) targets.push(target(`collect ${d}: ns per index`, ns(tCollect), "<=", 8, " ns"));
    for (const [name, kt, jt] of [
      ["count", tCount, tJsCount],
      ["collect", tCollect, tJsCollect],
      ["ranges", tRanges, tJsRanges],
      ["harvest", tHarvest, tJsHarvest],
    ] as const) {
      targets.push(target(`${name} ${d}: × plain JS`, jt.seconds / kt.seconds, ">=", 4));
    }
  }
  bm.dispose();
  spare.dispose();
}

function pageScanSuite(k: Kernel, rows: Row[], targets: Target[]): void {
  const pages = SCAN_PAGES;
  const bytes = pages * PAGE_SIZE;
  // two copies one page apart (never a power-of-two distance), realistic mixed content
  const ra = k.alloc(bytes, 64);
  const rb = k.alloc(bytes + PAGE_SIZE, 64);
  const r = rng(2024);
  {
    const a = k.bytes(ra);
    const b = k.bytes(rb).subarray(PAGE_SIZE);
    for (let p = 0; p < pages; p++) {
      const o = p * PAGE_SIZE;
      const kind = r();
      if (kind < 0.4)
        a.fill(0, o, o + PAGE_SIZE); // zero page
      else for (let j = 0; j < PAGE_SIZE; j += 4) a[o + j] = (r() * 256) | 0; // sparse non-zero words
    }
    b.set(a);
    for (let p = 0; p < pages; p++) if (r() < 0.1) b[p * PAGE_SIZE + ((r() * PAGE_SIZE) | 0)] ^= 0x40; // 10% of pages differ
  }
  const a = () => k.bytes(ra);
  const b = () => k.bytes(rb).subarray(PAGE_SIZE);
  const ai = new Int32Array(k.memory.buffer, ra.ptr, bytes >> 2);
  const bi = new Int32Array(k.memory.buffer, rb.ptr + PAGE_SIZE, bytes >> 2);
  const abuf = Buffer.from(k.memory.buffer, ra.ptr, bytes);
  const bbuf = Buffer.from(k.memory.buffer, rb.ptr + PAGE_SIZE, bytes);

  const diff = new DirtyBitmap(k, pages);
  const zero = new DirtyBitmap(k, pages);
  const jsDiff = () => {
    let n = 0;
    for (let p = 0; p < pages; p++) if (jsPagesDiffer(ai, bi, p)) n++;
    return n;
  };
  const bufDiff = () => {
    let n = 0;
    for (let p = 0; p < pages; p++) {
      const o = p * PAGE_SIZE;
      if (Buffer.compare(abuf.subarray(o, o + PAGE_SIZE), bbuf.subarray(o, o + PAGE_SIZE)) !== 0) n++;
    }
    return n;
  };
  const jsZero = () => {
    let n = 0;
    for (let p = 0; p < pages; p++) if (jsPageIsZero(ai, p)) n++;
    return n;
  };
  const wantDiff = jsDiff();
  const wantZero = jsZero();
  verify("diffPages", k.diffPages(a(), b(), pages, diff), wantDiff);
  verify("Buffer.compare", bufDiff(), wantDiff);
  verify("zeroPages", k.zeroPages(a(), pages, zero), wantZero);

  const opts = QUICK ? undefined : { maxTime: 3, minSamples: 8 };
  const memcpy = timeMemcpy(bytes, opts);
  const tDiff = time("diffPages", () => k.diffPages(a(), b(), pages, diff), opts);
  const tJsDiff = time("js diff", jsDiff, opts);
  const tBuf = time("Buffer.compare per page", bufDiff, opts);
  const tZero = time("zeroPages", () => k.zeroPages(a(), pages, zero), opts);
  const tJsZero = time("js zero", jsZero, opts);
  const label = `${bytes >> 20} MiB`;
  rows.push(row("memcpy (page bytes)", label, bytes, memcpy, memcpy));
  rows.push(row("diffPages", label, bytes, tDiff, memcpy, tJsDiff, tBuf));
  rows.push(row("zeroPages", label, bytes, tZero, memcpy, tJsZero));
  targets.push(target("diffPages: × memcpy", memcpy.seconds / tDiff.seconds, ">=", 1.0));
  targets.push(target("diffPages: × Buffer.compare per page", tBuf.seconds / tDiff.seconds, ">=", 1.0));
  targets.push(target("diffPages: × plain JS", tJsDiff.seconds / tDiff.seconds, ">=", 4));
  targets.push(target("zeroPages: × memcpy", memcpy.seconds / tZero.seconds, ">=", 1.5));
  targets.push(target("zeroPages: × plain JS", tJsZero.seconds / tZero.seconds, ">=", 4));
  diff.dispose();
  zero.dispose();
  k.free(ra);
  k.free(rb);
}

function row(
  op: string,
  input: string,
  bytes: number,
  t: Timing,
  memcpy: Timing,
  js?: Timing,
  peer?: Timing,
  nsPerIndex?: number,
): Row {
  return {
    op,
    input,
    "MB/s": mbps(bytes, t.seconds),
    ms: round(t.seconds * 1e3, 3),
    "× memcpy": round(memcpy.seconds / t.seconds, 2),
    "× plain JS": js ? round(js.seconds / t.seconds, 1) : "",
    "× peer": peer ? round(peer.seconds / t.seconds, 2) : "",
    "ns/index": nsPerIndex ?? "",
  };
}

export async function runBitmapBench(): Promise<{ rows: Row[]; targets: Target[]; file: string }> {
  const k = await loadKernel({ shared: false });
  const roaring = RoaringWasm as typeof RoaringWasm & { roaringLibraryInitialize?: () => Promise<void> };
  await roaring.roaringLibraryInitialize?.();
  const rows: Row[] = [];
  const targets: Target[] = [];
  bitmapSuite(k, roaring, rows, targets);
  pageScanSuite(k, rows, targets);
  const file = writeResults("bitmap", rows, targets);
  return { rows, targets, file };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { rows, targets, file } = await runBitmapBench();
  console.log(
    `\nbitmap benchmark (${QUICK ? "quick" : "full"}; peer = roaring-wasm for collect, Buffer.compare for diffPages)`,
  );
  printTable(rows);
  console.log("");
  printTargets(targets);
  console.log(`\nwrote ${file}`);
}
