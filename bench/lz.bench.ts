// The LZ page codec (assembly/lz.ts) against its peers, one page at a time, on the same
// pages in the same process: lz4 (lz4-wasm-nodejs, block format) and deflate level 1
// (fflate), and memcpy of the same bytes as the ceiling. Then what LZ costs the encode
// pipeline: EncodePipeline.encode on incompressible pages and on real ones, lz on vs off.
//   Run: npx tsx bench/lz.bench.ts [--quick]        (results: bench/results/lz.json)
//
// Page sets: "real" = non-zero pages of the three recordings' guests (../shared/datasets:
// the idle guest's memory, the pages redis and dirtier wrote), "random" = incompressible
// pages. Ratio = compressed bytes / input bytes; "ratio, budget" is LZ as the pipeline
// uses it (3072-byte budget, pages over it count as 4096: sent raw). Every codec's output
// is decoded and compared with its input before anything is timed; timings are the median
// of benchmark.js samples after its warm-up.
import { deflateSync, inflateSync } from "fflate";
import lz4 from "lz4-wasm-nodejs";
import { DEFAULT_CODECS, EncodePipeline } from "../src/codec/encode-pipeline.js";
import { emptyCounts } from "../src/codec/codecs.js";
import { LZ_TABLE_BYTES } from "../src/kernel/abi.js";
import { createKernel, PAGE_SIZE, type Kernel, type KernelRegion } from "../src/index.js";
import { loadRecording } from "../src/memory/recording.js";
import { PageRecordWriter } from "../src/wire/page-record.js";
import {
  mbps,
  printTable,
  printTargets,
  QUICK,
  rng,
  round,
  target,
  time,
  timeMemcpy,
  verify,
  writeResults,
  type Target,
} from "./harness.js";

const PAGES = QUICK ? 1024 : 4096;
const BUDGET = 3072;
/** A budget every page fits in (the grammar's worst case is under 4128 bytes). */
const FULL = 4128;
const SLOT = FULL + 32; // room for one page's encoding

type Row = Record<string, string | number>;

/** PAGES non-zero pages spread over the recordings (idle memory, then pages the workloads wrote). */
function realPages(): Uint8Array[] {
  const out: Uint8Array[] = [];
  const take = (page: Uint8Array) => {
    if (page.some((b) => b !== 0)) out.push(page.slice());
  };
  const idle = loadRecording("idle");
  const step = Math.max(1, Math.floor(idle.pageCount / (PAGES / 2)));
  for (let p = 0; p < idle.pageCount && out.length < PAGES / 2; p += step)
    take(idle.base.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE));
  for (const name of ["redis", "dirtier"]) {
    const rec = loadRecording(name);
    const want = out.length + PAGES / 4;
    for (const d of rec.deltas) {
      for (let i = 0; i < d.pages.length && out.length < want; i += 7)
        take(d.data.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
      if (out.length >= want) break;
    }
  }
  while (out.length < PAGES) out.push(out[out.length % Math.max(1, out.length)].slice());
  return out.slice(0, PAGES);
}

function randomPages(): Uint8Array[] {
  const r = rng(0x1207);
  return Array.from({ length: PAGES }, () => {
    const p = new Uint8Array(PAGE_SIZE);
    const w = new Uint32Array(p.buffer);
    for (let i = 0; i < w.length; i++) w[i] = (r() * 2 ** 32) >>> 0;
    return p;
  });
}

interface Set {
  name: string;
  pages: Uint8Array[];
}

/** The pages in kernel memory, their LZ encodings (full budget) and lengths. */
interface Staged {
  src: KernelRegion;
  enc: KernelRegion;
  dst: KernelRegion;
  table: KernelRegion;
  lengths: Int32Array;
}

function stage(k: Kernel, pages: Uint8Array[]): Staged {
  const src = k.alloc((pages.length + 1) * PAGE_SIZE, PAGE_SIZE);
  const enc = k.alloc(pages.length * SLOT, 64);
  const dst = k.alloc(PAGE_SIZE, PAGE_SIZE);
  const table = k.alloc(LZ_TABLE_BYTES, 64);
  const s = k.bytes(src);
  pages.forEach((p, i) => s.set(p, (i + 1) * PAGE_SIZE)); // a page off the power-of-two distance
  return { src, enc, dst, table, lengths: new Int32Array(pages.length) };
}

const at = (s: Staged, i: number) => s.src.ptr + (i + 1) * PAGE_SIZE;

/** LZ-encodes every page with budget `dlen`; returns total bytes, pages over the budget counted as a page. */
function lzEncodeAll(k: Kernel, s: Staged, n: number, dlen: number): number {
  let total = 0;
  for (let i = 0; i < n; i++) {
    const r = k.raw.lzEncode(at(s, i), s.enc.ptr + i * SLOT, dlen, s.table.ptr);
    s.lengths[i] = r;
    total += r > 0 ? r : PAGE_SIZE;
  }
  return total;
}

function lzDecodeAll(k: Kernel, s: Staged, n: number): number {
  let pages = 0;
  for (let i = 0; i < n; i++) {
    const len = s.lengths[i];
    if (len > 0) pages += k.raw.lzDecode(s.enc.ptr + i * SLOT, len, s.dst.ptr) > 0 ? 1 : 0;
  }
  return pages;
}

function benchCodecs(k: Kernel, set: Set, rows: Row[]): Record<string, { enc: number; dec: number; ratio: number }> {
  const n = set.pages.length;
  const bytes = n * PAGE_SIZE;
  const s = stage(k, set.pages);
  const out: Record<string, { enc: number; dec: number; ratio: number }> = {};
  try {
    // verify: LZ (full budget) decodes to every page; budgeted LZ gives the same bytes or gives up
    const full = lzEncodeAll(k, s, n, FULL);
    const fullLengths = s.lengths.slice();
    for (let i = 0; i < n; i++) {
      verify(
        `lz decode ${set.name} page ${i}`,
        k.raw.lzDecode(s.enc.ptr + i * SLOT, s.lengths[i], s.dst.ptr),
        PAGE_SIZE,
      );
      if (!Buffer.from(k.bytes(s.dst)).equals(Buffer.from(set.pages[i])))
        throw new Error(`benchmark verification failed: lz round trip of ${set.name} page ${i}`);
    }
    const budgeted = lzEncodeAll(k, s, n, BUDGET);
    for (let i = 0; i < n; i++)
      if (s.lengths[i] > 0) verify(`lz budgeted length, page ${i}`, s.lengths[i], fullLengths[i]);

    // peers: verify their round trips, and their sizes
    const lz4Out = set.pages.map((p) => lz4.compress(p));
    lz4Out.forEach((c, i) => {
      if (!Buffer.from(lz4.decompress(c)).equals(Buffer.from(set.pages[i])))
        throw new Error(`benchmark verification failed: lz4 round trip, page ${i}`);
    });
    const deflated = set.pages.map((p) => deflateSync(p, { level: 1 }));
    const inflateOut = new Uint8Array(PAGE_SIZE);
    deflated.forEach((c, i) => {
      if (!Buffer.from(inflateSync(c, { out: inflateOut })).equals(Buffer.from(set.pages[i])))
        throw new Error(`benchmark verification failed: deflate round trip, page ${i}`);
    });
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

    // timings: one operation = the whole set, page by page
    const memcpy = timeMemcpy(bytes);
    const tEnc = time(`lz encode ${set.name}`, () => lzEncodeAll(k, s, n, FULL));
    const tEncBudget = time(`lz encode ${set.name}, budget`, () => lzEncodeAll(k, s, n, BUDGET));
    s.lengths.set(fullLengths);
    const tDec = time(`lz decode ${set.name}`, () => lzDecodeAll(k, s, n));
    const tLz4Enc = time(`lz4 compress ${set.name}`, () => {
      for (const p of set.pages) lz4.compress(p);
    });
    const tLz4Dec = time(`lz4 decompress ${set.name}`, () => {
      for (const c of lz4Out) lz4.decompress(c);
    });
    const tDefEnc = time(`deflate-1 ${set.name}`, () => {
      for (const p of set.pages) deflateSync(p, { level: 1 });
    });
    const tDefDec = time(`inflate ${set.name}`, () => {
      for (const c of deflated) inflateSync(c, { out: inflateOut });
    });

    const decodedBytes = (lengths: Int32Array) => PAGE_SIZE * lengths.filter((l) => l > 0).length;
    const add = (codec: string, enc: number, dec: number, ratio: number, decBytes = bytes) => {
      const row = {
        set: set.name,
        codec,
        "compress MB/s": mbps(bytes, enc),
        "decompress MB/s": dec > 0 ? mbps(decBytes, dec) : "",
        ratio: round(ratio, 3),
        "× memcpy (c)": round(memcpy.seconds / enc, 3),
      };
      rows.push(row);
      out[codec] = { enc: row["compress MB/s"], dec: dec > 0 ? mbps(decBytes, dec) : 0, ratio };
    };
    add("memcpy", memcpy.seconds, memcpy.seconds, 1);
    add("lz (pagewire)", tEnc.seconds, tDec.seconds, full / bytes, decodedBytes(fullLengths));
    add(`lz, budget ${BUDGET}`, tEncBudget.seconds, 0, budgeted / bytes);
    add("lz4 (lz4-wasm-nodejs)", tLz4Enc.seconds, tLz4Dec.seconds, sum(lz4Out.map((c) => c.length)) / bytes);
    add("deflate-1 (fflate)", tDefEnc.seconds, tDefDec.seconds, sum(deflated.map((c) => c.length)) / bytes);
    return out;
  } finally {
    for (const r of [s.src, s.enc, s.dst, s.table]) k.free(r);
  }
}

/** Seconds of one first-copy pass of `pages` through EncodePipeline.encode (batches of 256), lz on or off. */
function pipelinePass(k: Kernel, pages: Uint8Array[], lz: boolean): () => number {
  const BATCH = 256;
  const pipeline = new EncodePipeline(k, pages.length, { ...DEFAULT_CODECS, lz, hashSeed: 5n }, BATCH);
  const writer = new PageRecordWriter(BATCH * (PAGE_SIZE + 8) + 64, { kernel: k });
  const list = Uint32Array.from(pages.keys());
  return () => {
    // sendAll: every pass sends every page (none skipped as unchanged, no dedup reference), as a first copy does
    pipeline.beginRound(0, false, true);
    let sent = 0;
    for (let i = 0; i < pages.length; i += BATCH) {
      const chunk = list.subarray(i, i + BATCH);
      const snap = pipeline.snapshotView(chunk.length);
      for (let j = 0; j < chunk.length; j++) snap.set(pages[i + j], j * PAGE_SIZE);
      writer.begin(0);
      pipeline.encode(chunk, chunk.length, writer, emptyCounts());
      sent += writer.size;
    }
    return sent;
  };
}

async function main(): Promise<void> {
  const k = await createKernel();
  const rows: Row[] = [];
  const targets: Target[] = [];
  const sets: Set[] = [
    { name: "real", pages: realPages() },
    { name: "random", pages: randomPages() },
  ];
  const results: Record<string, ReturnType<typeof benchCodecs>> = {};
  for (const set of sets) results[set.name] = benchCodecs(k, set, rows);
  printTable(rows);

  // the encode pipeline, lz on vs off, interleaved so both see the same machine load
  const pipeRows: Row[] = [];
  const slowdown: Record<string, number> = {};
  for (const set of sets) {
    const on = pipelinePass(k, set.pages, true);
    const off = pipelinePass(k, set.pages, false);
    const bytesOn = on();
    const bytesOff = off();
    if (set.name === "random") verify("random pages: lz changes no byte sent", bytesOn, bytesOff);
    const tOff: number[] = [];
    const tOn: number[] = [];
    for (let rep = 0; rep < (QUICK ? 3 : 5); rep++) {
      tOff.push(time(`pipeline ${set.name} lz off`, off).seconds);
      tOn.push(time(`pipeline ${set.name} lz on`, on).seconds);
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
    const a = med(tOff);
    const b = med(tOn);
    slowdown[set.name] = b / a - 1;
    const bytes = set.pages.length * PAGE_SIZE;
    pipeRows.push({
      set: set.name,
      "lz off MB/s": mbps(bytes, a),
      "lz on MB/s": mbps(bytes, b),
      slowdown: `${round(100 * (b / a - 1), 1)}%`,
      "bytes sent, off": bytesOff,
      "bytes sent, on": bytesOn,
      "sent on/off": round(bytesOn / bytesOff, 3),
    });
  }
  console.log();
  printTable(pipeRows);

  const real = results.real;
  targets.push(target("lz compress MB/s, real pages", real["lz (pagewire)"].enc, ">=", 300, " MB/s"));
  targets.push(target("lz decompress MB/s, real pages", real["lz (pagewire)"].dec, ">=", 1000, " MB/s"));
  targets.push(
    target(
      "lz ratio / lz4 ratio, real pages",
      real["lz (pagewire)"].ratio / real["lz4 (lz4-wasm-nodejs)"].ratio,
      "<=",
      1.05,
    ),
  );
  targets.push(target("encode pipeline slowdown with lz, random pages", slowdown.random, "<=", 0.1));
  printTargets(targets);
  const file = writeResults("lz", [...rows, ...pipeRows], targets);
  console.log(`results: ${file}`);
}

await main();
