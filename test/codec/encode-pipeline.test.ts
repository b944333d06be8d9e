// The encode pipeline end to end: rounds of dirty pages of many kinds (random, zero,
// duplicates, slightly changed across rounds, run-length friendly, text-like, the idle recording)
// go through EncodePipeline with every codec on, each one off in turn and all off, with
// and without the last stage and sendAll; every payload is applied to a destination, which
// must then hold exactly the source's pages. Counts must agree with the records, and the
// bytes must not be worse than the pipeline before the one-pass kernel
// (bench/support/old-encode-pipeline.ts) on the same input.
import { beforeAll, describe, expect, it } from "vitest";
import {
  countRecords,
  emptyCounts,
  findRecordCodec,
  selectAllCodecs,
  selectCodecs,
  SWITCHABLE_CODECS,
  type CodecFlags,
  type EncodeCounts,
} from "../../src/codec/codecs.js";
import { EncodePipeline, type CodecOptions } from "../../src/codec/encode-pipeline.js";
import { PageApplier } from "../../src/codec/page-applier.js";
import { loadKernel, PAGE_SIZE, WasmGuestMemory, type Kernel } from "../../src/index.js";
import { loadRecording } from "../../src/memory/recording.js";
import { PageRecordWriter, readPageRecords, RecordKind } from "../../src/wire/page-record.js";
import { OldEncodePipeline } from "../../bench/support/old-encode-pipeline.js";
import { ArrayMemory } from "../support/array-memory.js";
import { makeRepeatPage, makeTextPage } from "../support/lz-oracle.js";
import { fillRandom, makeRunPage } from "../support/pairs.js";
import { randInt, rng } from "../support/random.js";

let k: Kernel;
let idle: Uint8Array[] = []; // idle recording: the pages of snapshot 0, then of the last snapshot
beforeAll(async () => {
  k = await loadKernel();
  const rec = loadRecording("idle");
  const last = rec.base.slice(0, PAGES * 8 * PAGE_SIZE);
  for (const d of rec.deltas)
    for (let i = 0; i < d.pages.length; i++)
      if (d.pages[i] < PAGES * 8) last.set(d.data.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE), d.pages[i] * PAGE_SIZE);
  // 8 × PAGES pages of the recording (idle, zero, duplicates, kernel data), then their changed versions
  idle = [rec.base.subarray(0, PAGES * 8 * PAGE_SIZE), last];
  // non-zero pages from all over the guest (its first 16 MiB hold mostly compressed images)
  for (let p = 4096; p < rec.pageCount && spread.length < 256; p += 61) {
    const v = rec.base.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
    if (v.some((b) => b !== 0)) spread.push(v.slice());
  }
});
const spread: Uint8Array[] = [];

const PAGES = 512;
const BATCH = 64;

type Workload = "random" | "zero" | "duplicates" | "xbzrle" | "rle" | "text" | "recording" | "mixed";
const WORKLOADS: Workload[] = ["random", "zero", "duplicates", "xbzrle", "rle", "text", "recording", "mixed"];

/** The next content of `page` (its current content in `cur`) under a workload. */
function nextContent(w: Workload, r: () => number, page: number, round: number, cur: Uint8Array): Uint8Array {
  const p = new Uint8Array(PAGE_SIZE);
  const kind =
    w === "mixed" ? WORKLOADS.filter((x) => x !== "mixed" && x !== "recording")[randInt(r, 6)] : (w as Workload);
  switch (kind) {
    case "random":
      fillRandom(r, p);
      return p;
    case "zero":
      if (r() < 0.5) fillRandom(r, p);
      return p;
    case "duplicates": {
      // one of a small pool of pages (so batches hold duplicates of each other and of earlier pages)
      const pool = rng(1000 + randInt(r, 12));
      fillRandom(pool, p);
      if (r() < 0.1) p.fill(0);
      return p;
    }
    case "xbzrle": {
      if (round === 0 || r() < 0.1) {
        r() < 0.5 ? fillRandom(r, p) : makeRunPage(r, p);
        return p;
      }
      p.set(cur);
      const n = 1 + randInt(r, r() < 0.8 ? 16 : 2000);
      for (let t = 0; t < n; t++) p[randInt(r, PAGE_SIZE)] ^= 1 + randInt(r, 255);
      if (r() < 0.1) p.set(cur); // written back unchanged
      return p;
    }
    case "rle":
      makeRunPage(r, p);
      return p;
    case "text":
      // LZ material: text and pages repeating their own stretches, some with a random tail
      (r() < 0.5 ? makeTextPage : makeRepeatPage)(r, p);
      if (r() < 0.2) fillRandom(r, p.subarray(randInt(r, PAGE_SIZE >> 2) << 2));
      return p;
    case "recording": {
      const image = idle[round === 0 ? 0 : 1];
      const from = r() < 0.9 ? page : randInt(r, PAGES * 8); // mostly the page itself, sometimes another one
      p.set(image.subarray(from * PAGE_SIZE, (from + 1) * PAGE_SIZE));
      return p;
    }
  }
  return p;
}

interface Round {
  pages: Uint32Array;
  contents: Uint8Array<ArrayBufferLike>[];
  lastStage: boolean;
  sendAll: boolean;
}

/** How the rounds end: as pre-copy does (a stop-and-copy round) or as hybrid does (a post-copy push). */
type Ending = "stop-and-copy" | "postcopy" | "last stage twice";

/**
 * Round 0 sends every page; 5 more rounds send random subsets of dirty pages; then the
 * last stage: a stop-and-copy round of dirty pages, or a post-copy push (sendAll) of pages
 * whose content did not change since they were last sent or written (the guest is paused),
 * or, beyond what the engine does, two last-stage rounds with the pages changing between
 * them (the XBZRLE cache must still match the destination).
 */
function makeRounds(w: Workload, seed: number, ending: Ending): Round[] {
  const r = rng(seed);
  const current: Uint8Array<ArrayBufferLike>[] = Array.from({ length: PAGES }, () => new Uint8Array(PAGE_SIZE));
  const rounds: Round[] = [];
  const total = ending === "last stage twice" ? 8 : 7;
  for (let round = 0; round < total; round++) {
    const lastStage = round >= 6;
    const sendAll = lastStage && ending === "postcopy";
    const list: number[] = [];
    for (let p = 0; p < PAGES; p++) if (round === 0 || r() < 0.3) list.push(p);
    for (let i = list.length - 1; i > 0; i--) {
      const j = randInt(r, i + 1);
      [list[i], list[j]] = [list[j], list[i]];
    }
    const contents = list.map((p) => {
      // some dirty pages keep their content (fake dirty); a post-copy push sends pages as they are
      const keep = sendAll || (round > 0 && r() < 0.15);
      const next = keep ? current[p].slice() : nextContent(w, r, p, round, current[p]);
      current[p] = next;
      return next;
    });
    rounds.push({ pages: Uint32Array.from(list), contents, lastStage, sendAll });
  }
  return rounds;
}

interface Pipeline {
  snapshotView(count: number): Uint8Array;
  beginRound(round: number, lastStage?: boolean, sendAll?: boolean): void;
  encode(pages: Uint32Array, count: number, out: PageRecordWriter, counts: EncodeCounts): void;
  dispose(): void;
}

interface Outcome {
  bytes: number;
  counts: EncodeCounts;
}

/**
 * Runs `rounds` through `pipeline` in batches, applying every payload to a fresh
 * destination; checks after each round that the destination holds every source page and
 * that the counts agree with the records. Returns payload bytes and counts.
 */
function run(pipeline: Pipeline, rounds: Round[], label: string): Outcome {
  const dst = new WasmGuestMemory(k, PAGES);
  const applier = new PageApplier(k, dst);
  const writer = new PageRecordWriter(1 << 16);
  const source: Uint8Array<ArrayBufferLike>[] = Array.from({ length: PAGES }, () => new Uint8Array(PAGE_SIZE));
  const total = emptyCounts();
  let bytes = 0;
  try {
    rounds.forEach((round, n) => {
      pipeline.beginRound(n, round.lastStage, round.sendAll);
      for (let i = 0; i < round.pages.length; i += BATCH) {
        const pages = round.pages.subarray(i, i + BATCH);
        const snapshot = pipeline.snapshotView(pages.length);
        pages.forEach((p, j) => {
          snapshot.set(round.contents[i + j], j * PAGE_SIZE);
          source[p] = round.contents[i + j];
        });
        writer.begin(n);
        const counts = emptyCounts();
        pipeline.encode(pages, pages.length, writer, counts);
        const payload = writer.finish();
        bytes += payload.length;
        // counts agree with the records, and every page is counted once
        const records = [...readPageRecords(payload, PAGES)];
        expect(records.length, label).toBe(countRecords(counts));
        const byKind = emptyCounts();
        for (const rec of records) byKind[findRecordCodec(rec.kind).count]++;
        for (const c of ["zero", "dedup", "xbzrle", "rle", "lz", "raw"] as const)
          expect(byKind[c], `${label} ${c}`).toBe(counts[c]);
        expect(countRecords(counts) + counts.skipped, label).toBe(pages.length);
        if (round.sendAll) expect(counts.skipped + counts.dedup, `${label}: sendAll`).toBe(0);
        for (const rec of records) expect(pages.includes(rec.page), label).toBe(true);
        expect(applier.apply(payload), label).toBe(records.length);
        for (const c of Object.keys(total) as (keyof EncodeCounts)[]) total[c] += counts[c];
      }
      for (let p = 0; p < PAGES; p++)
        if (!Buffer.from(dst.pageView(p)).equals(Buffer.from(source[p])))
          throw new Error(`${label}: page ${p} differs at the destination after round ${n}`);
    });
  } finally {
    dst.dispose();
  }
  return { bytes, counts: total };
}

const FLAG_SETS: Array<[string, CodecFlags]> = [
  ["all", selectAllCodecs()],
  ...SWITCHABLE_CODECS.map((c): [string, CodecFlags] => [`no ${c}`, { ...selectAllCodecs(), [c]: false }]),
  ["none", selectCodecs([])],
];

function options(flags: CodecFlags, cacheBytes: number): CodecOptions {
  return { ...flags, hashSeed: 0x1234_5678_9abc_def0n, xbzrleCacheBytes: cacheBytes };
}

describe("EncodePipeline: the destination holds exactly the source pages", () => {
  for (const w of WORKLOADS) {
    it(`${w} pages, every codec set, ending with stop-and-copy or a post-copy push`, () => {
      let oldBytes = 0;
      let newBytes = 0;
      for (const [name, flags] of FLAG_SETS) {
        for (const ending of ["stop-and-copy", "postcopy"] as const) {
          const rounds = makeRounds(w, 17 + w.length, ending);
          // a small cache (evictions, refused inserts) before a post-copy push, a large one before stop-and-copy
          const opts = options(flags, ending === "postcopy" ? 64 * PAGE_SIZE : 1 << 20);
          const label = `${w}, ${name}, ${ending}`;
          const pipeline = new EncodePipeline(k, PAGES, opts, BATCH);
          const old = new OldEncodePipeline(k, PAGES, opts, BATCH);
          try {
            const a = run(pipeline, rounds, label);
            const b = run(old, rounds, `${label} (old pipeline)`);
            newBytes += a.bytes;
            oldBytes += b.bytes;
            expect(a.bytes, `${label}: bytes, new vs old pipeline`).toBeLessThanOrEqual(b.bytes);
            if (w === "mixed" && name === "all")
              for (const c of Object.keys(a.counts) as (keyof EncodeCounts)[])
                expect(a.counts[c], `${label}: ${c} pages`).toBeGreaterThan(0);
          } finally {
            pipeline.dispose();
            old.dispose();
          }
        }
      }
      expect(newBytes).toBeLessThanOrEqual(oldBytes);
    });
  }

  // QEMU refreshes no cached copy at the last stage, which the engine's last stage (one
  // send per page, guest paused) allows; a page sent twice there with new content in
  // between must still decode right (the pipeline before the kernel got this wrong).
  for (const w of ["xbzrle", "mixed"] as const)
    it(`${w} pages changing between two last-stage rounds`, () => {
      for (const [name, flags] of FLAG_SETS) {
        const pipeline = new EncodePipeline(k, PAGES, options(flags, 1 << 20), BATCH);
        try {
          run(pipeline, makeRounds(w, 99, "last stage twice"), `${w}, ${name}, last stage twice`);
        } finally {
          pipeline.dispose();
        }
      }
    });
});

describe("EncodePipeline.encodeMemory", () => {
  it("reading guest RAM in kernel memory directly gives the same records as the snapshot path", () => {
    for (const [name, flags] of FLAG_SETS) {
      const opts = options(flags, 1 << 20);
      const direct = new EncodePipeline(k, PAGES, opts, BATCH);
      const viaSnapshot = new EncodePipeline(k, PAGES, opts, BATCH);
      const viaArray = new EncodePipeline(k, PAGES, opts, BATCH);
      const ram = new WasmGuestMemory(k, PAGES);
      const array = new ArrayMemory(PAGES);
      const observed: number[] = [];
      const log = {
        start() {},
        stop() {},
        harvest() {},
        observe: (pages: ArrayLike<number>) => observed.push(pages.length),
      };
      const writers = [0, 1, 2].map(() => new PageRecordWriter(1 << 16, { kernel: k }));
      try {
        makeRounds("mixed", 5, "postcopy").forEach((round, n) => {
          for (const p of [direct, viaSnapshot, viaArray]) p.beginRound(n, round.lastStage, round.sendAll);
          round.pages.forEach((p, i) => {
            ram.writePage(p, round.contents[i]);
            array.writePage(p, round.contents[i]);
          });
          for (let i = 0; i < round.pages.length; i += BATCH) {
            const pages = round.pages.subarray(i, i + BATCH);
            const counts = [emptyCounts(), emptyCounts(), emptyCounts()];
            for (const w of writers) w.begin(n);
            direct.encodeMemory(ram, pages, pages.length, writers[0], counts[0]);
            ram.readPages(pages, viaSnapshot.snapshotView(pages.length));
            viaSnapshot.encode(pages, pages.length, writers[1], counts[1]);
            viaArray.encodeMemory(array, pages, pages.length, writers[2], counts[2], log);
            const [a, b, c] = writers.map((w) => w.finish());
            expect(Buffer.from(a).equals(Buffer.from(b)), `${name}, round ${n}`).toBe(true);
            expect(Buffer.from(c).equals(Buffer.from(b)), `${name}, round ${n}`).toBe(true);
            expect(counts[0]).toEqual(counts[1]);
            expect(counts[2]).toEqual(counts[1]);
          }
        });
        expect(observed.length).toBeGreaterThan(0);
      } finally {
        for (const p of [direct, viaSnapshot, viaArray]) p.dispose();
        for (const w of writers) w.dispose();
        ram.dispose();
      }
    }
  });

  it("rejects a page past the end and a batch larger than the pipeline's", () => {
    const p = new EncodePipeline(k, 8, {}, 4);
    const w = new PageRecordWriter(1 << 16);
    try {
      expect(() => p.encode(Uint32Array.of(8), 1, w, emptyCounts())).toThrow(
        expect.objectContaining({ code: "PAGE_INDEX" }),
      );
      expect(() => p.encode(Uint32Array.of(0, 1, 2, 3, 4), 5, w, emptyCounts())).toThrow(
        expect.objectContaining({ code: "PAGE_COUNT" }),
      );
      expect(w.count).toBe(0);
    } finally {
      p.dispose();
    }
  });
});

describe("EncodePipeline: LZ", () => {
  /** One first-copy batch of `contents` through a pipeline with `flags`; returns the records and the counts. */
  const firstCopy = (contents: Uint8Array[], opts: CodecOptions) => {
    const pipeline = new EncodePipeline(k, contents.length, { hashSeed: 1n, ...opts }, contents.length);
    const dst = new WasmGuestMemory(k, contents.length);
    const writer = new PageRecordWriter(1 << 20);
    try {
      const pages = Uint32Array.from(contents.keys());
      const snap = pipeline.snapshotView(contents.length);
      contents.forEach((c, i) => snap.set(c, i * PAGE_SIZE));
      const counts = emptyCounts();
      writer.begin(0);
      pipeline.encode(pages, pages.length, writer, counts);
      const payload = writer.finish();
      new PageApplier(k, dst).apply(payload);
      contents.forEach((c, i) => expect(Buffer.from(dst.pageView(i)).equals(Buffer.from(c)), `page ${i}`).toBe(true));
      return { records: [...readPageRecords(payload, contents.length)], counts, bytes: payload.length };
    } finally {
      pipeline.dispose();
      dst.dispose();
    }
  };
  it("sends first copies of real pages as LZ within the budget, fewer bytes than without it", () => {
    const pages = spread;
    for (const lzMaxBytes of [3072, 1024]) {
      const on = firstCopy(pages, { lzMaxBytes });
      const off = firstCopy(pages, { lz: false });
      expect(on.counts.lz).toBeGreaterThan(lzMaxBytes === 3072 ? pages.length / 4 : 0);
      expect(off.counts.lz).toBe(0);
      for (const r of on.records) if (r.kind === RecordKind.LZ) expect(r.body.length).toBeLessThanOrEqual(lzMaxBytes);
      expect(on.bytes).toBeLessThan(off.bytes * (lzMaxBytes === 3072 ? 0.75 : 1));
    }
  });

  it("never sends a random page as LZ; LZ wins only when shorter than RLE, and RLE on a tie", () => {
    const r = rng(12);
    const pages = Array.from({ length: 64 }, (_, i) => {
      const p = new Uint8Array(PAGE_SIZE);
      if (i % 3 === 0) fillRandom(r, p);
      else if (i % 3 === 1) makeRunPage(r, p);
      else makeTextPage(r, p);
      return p;
    });
    const { records } = firstCopy(pages, {});
    for (const rec of records) {
      if (rec.page % 3 === 0) expect(rec.kind).toBe(RecordKind.RAW);
      if (rec.kind === RecordKind.LZ) {
        // the encoder's bytes do not depend on its budget
        const lz = new Uint8Array(4128);
        expect(k.lzEncode(pages[rec.page], lz)).toBe(rec.body.length);
        expect(Buffer.from(lz.subarray(0, rec.body.length)).equals(Buffer.from(rec.body))).toBe(true);
      }
      if (rec.kind === RecordKind.RLE) {
        const lz = k.lzEncode(pages[rec.page], new Uint8Array(4128));
        expect(lz === -1 || lz >= rec.body.length).toBe(true);
      }
    }
    expect(records.some((x) => x.kind === RecordKind.LZ)).toBe(true);
  });

  it("rejects an LZ budget outside 1..4096", () => {
    for (const lzMaxBytes of [0, 4097, 1.5])
      expect(() => new EncodePipeline(k, 8, { lzMaxBytes })).toThrow(expect.objectContaining({ code: "LZ_MAX_BYTES" }));
  });
});
