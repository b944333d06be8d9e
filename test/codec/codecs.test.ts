// The codec table (src/codec/codecs.ts) against what uses it: the wire's record kinds, the
// order in which the encode pipeline tries the stages, the apply step of each record
// kind, the handshake's feature lists, and the report's counters and columns.
import { beforeAll, describe, expect, it } from "vitest";
import {
  CODEC_COUNTERS,
  CODEC_FEATURES,
  CODEC_NAMES,
  CODECS,
  COUNT_COLUMNS,
  countRecords,
  emptyCounts,
  findRecordCodec,
  negotiateCodecs,
  RECORD_CODECS,
  selectAllCodecs,
  selectCodecs,
  SWITCHABLE_CODECS,
  type CodecFlags,
  type CodecName,
} from "../../src/codec/codecs.js";
import { EncodePipeline } from "../../src/codec/encode-pipeline.js";
import { PageApplier } from "../../src/codec/page-applier.js";
import {
  acceptFeatures,
  ALL_FEATURES,
  checkAcceptedFeatures,
  ENGINE_FEATURES,
  offerFeatures,
} from "../../src/engine/features.js";
import { MigrationReport, ROUND_COLUMNS } from "../../src/engine/report.js";
import { parseCodecs } from "../../src/cli/scenario.js";
import { loadKernel, PAGE_SIZE, WasmGuestMemory, type Kernel } from "../../src/index.js";
import { PROTOCOL_VERSION } from "../../src/wire/frame.js";
import { Message } from "../../src/wire/messages.js";
import { PageRecordWriter, readPageRecords, RecordKind } from "../../src/wire/page-record.js";
import { rng } from "../support/random.js";

let k: Kernel;
beforeAll(async () => {
  k = await loadKernel();
});

const unique = <T>(xs: readonly T[]) => new Set(xs).size === xs.length;

describe("codec table", () => {
  it("names each record kind of the wire exactly once", () => {
    const kinds = CODECS.map((c) => c.record)
      .filter((r) => r !== null)
      .sort();
    expect(kinds).toEqual(Object.values(RecordKind).sort());
    for (const kind of Object.values(RecordKind)) expect(findRecordCodec(kind).record).toBe(kind);
    expect(() => findRecordCodec(7 as RecordKind)).toThrow(RangeError);
  });

  it("has unique names, features, count columns and counters", () => {
    expect(unique(CODEC_NAMES)).toBe(true);
    expect(unique(CODEC_FEATURES)).toBe(true);
    expect(unique(COUNT_COLUMNS)).toBe(true);
    expect(unique(CODEC_COUNTERS)).toBe(true);
    expect(CODEC_NAMES).toEqual(["unchanged", "zero", "dedup", "xbzrle", "rle", "lz", "raw"]);
  });

  it("ends with raw, the one stage that cannot be switched off", () => {
    expect(CODECS[CODECS.length - 1].name).toBe("raw");
    expect(SWITCHABLE_CODECS).toEqual(CODEC_NAMES.filter((n) => n !== "raw"));
  });

  it("selects codecs by name, every other one off", () => {
    expect(selectCodecs(["zero", "rle"])).toEqual({
      unchanged: false,
      zero: true,
      dedup: false,
      xbzrle: false,
      rle: true,
      lz: false,
    });
    expect(Object.values(selectAllCodecs()).every((on) => on)).toBe(true);
    expect(parseCodecs("all")).toEqual(selectAllCodecs());
    expect(parseCodecs("none")).toEqual(selectCodecs([]));
    expect(parseCodecs("xbzrle, unchanged")).toEqual(selectCodecs(["unchanged", "xbzrle"]));
    expect(() => parseCodecs("zero,raw")).toThrow(
      /unknown stage 'raw' \(unchanged, zero, dedup, xbzrle, rle, lz, all, none\)/,
    );
  });
});

// ---- pipeline order -------------------------------------------------------------------

/** Page contents by page, per round; `target`'s outcome in the last round is what counts. */
interface Scenario {
  rounds: Array<Map<number, Uint8Array>>;
  target: number;
}

const PAGES = 8;

function randomPage(seed: number): Uint8Array {
  const r = rng(seed);
  return Uint8Array.from({ length: PAGE_SIZE }, () => Math.floor(r() * 256));
}

function filled(value: number, prefix = 0, seed = 1): Uint8Array {
  const p = new Uint8Array(PAGE_SIZE).fill(value);
  p.set(randomPage(seed).subarray(0, prefix));
  return p;
}

function textPage(): Uint8Array {
  const words = ["static ", "int ", "return ", "page", "_dirty", "(void);\n", "kernel"];
  let seed = 7;
  const r = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / 2 ** 24;
  const p = new Uint8Array(PAGE_SIZE);
  for (let x = 0; x < PAGE_SIZE; )
    for (const c of words[Math.floor(r() * words.length)]) if (x < PAGE_SIZE) p[x++] = c.charCodeAt(0);
  return p;
}

function changed(page: Uint8Array, at: number): Uint8Array {
  const p = page.slice();
  p[at] ^= 0x5a;
  return p;
}

/**
 * Runs the rounds through an EncodePipeline with `flags` and applies every payload to a
 * destination; returns the stage that took the target page in the last round
 * ("unchanged" when it got no record) and checks the destination holds each page sent.
 */
function encodeScenario(s: Scenario, flags: CodecFlags): CodecName {
  const pipeline = new EncodePipeline(k, PAGES, {
    ...flags,
    hashSeed: 7n,
    xbzrleFromRound: 0,
    xbzrleCacheBytes: 1 << 20,
  });
  const dst = new WasmGuestMemory(k, PAGES);
  const applier = new PageApplier(k, dst);
  const writer = new PageRecordWriter(1 << 16);
  const source = new Map<number, Uint8Array>();
  let outcome: CodecName = "unchanged";
  try {
    s.rounds.forEach((contents, round) => {
      const pages = Uint32Array.from(contents.keys());
      pipeline.beginRound(round);
      writer.begin(round);
      const snapshot = pipeline.snapshotView(pages.length);
      pages.forEach((p, i) => {
        snapshot.set(contents.get(p)!, i * PAGE_SIZE);
        source.set(p, contents.get(p)!);
      });
      const counts = emptyCounts();
      pipeline.encode(pages, pages.length, writer, counts);
      const payload = writer.finish();
      const records = [...readPageRecords(payload, PAGES)];
      expect(records.length).toBe(countRecords(counts));
      const target = records.find((r) => r.page === s.target);
      outcome = target ? findRecordCodec(target.kind).name : "unchanged";
      applier.apply(payload);
      for (const [p, bytes] of source) expect(dst.pageView(p), `page ${p} after round ${round}`).toEqual(bytes);
    });
  } finally {
    pipeline.dispose();
    dst.dispose();
  }
  return outcome;
}

// For each stage and the next one in the table: a page both would take.
const BOTH: Record<string, () => Scenario> = {
  // a zero page sent as zero, reported dirty with the same (zero) bytes
  "unchanged, zero": () => ({ rounds: [new Map([[1, filled(0)]]), new Map([[1, filled(0)]])], target: 1 }),
  // a page turned zero while another page the destination holds is zero
  "zero, dedup": () => ({
    rounds: [
      new Map([
        [0, filled(0)],
        [1, randomPage(1)],
      ]),
      new Map([[1, filled(0)]]),
    ],
    target: 1,
  }),
  // a cached page changed into a copy of another page the destination holds
  "dedup, xbzrle": () => {
    const a = randomPage(2);
    return {
      rounds: [
        new Map([
          [0, a],
          [1, changed(a, 100)],
        ]),
        new Map([[1, a]]),
      ],
      target: 1,
    };
  },
  // a cached, run-length friendly page with one byte changed (the delta is the shorter encoding)
  "xbzrle, rle": () => {
    const a = filled(0x11, 64, 3);
    return { rounds: [new Map([[1, a]]), new Map([[1, changed(a, 2000)]])], target: 1 };
  },
  // a run-length friendly page seen for the first time (no cached copy): RLE is the shorter
  "rle, lz": () => ({ rounds: [new Map([[1, filled(0x22, 64, 4)]])], target: 1 }),
  // a text-like page seen for the first time: no runs, repeated words
  "lz, raw": () => ({ rounds: [new Map([[1, textPage()]])], target: 1 }),
};

describe("the encode pipeline", () => {
  for (let i = 0; i + 1 < CODECS.length; i++) {
    const first = CODECS[i].name;
    const next = CODECS[i + 1].name;
    it(`tries ${first} before ${next}, as the table lists them`, () => {
      const scenario = BOTH[`${first}, ${next}`];
      expect(scenario, `a scenario for ${first}, ${next}`).toBeDefined();
      expect(encodeScenario(scenario(), selectAllCodecs())).toBe(first);
      // with the first stage off, the same page goes to the next one
      expect(encodeScenario(scenario(), { ...selectAllCodecs(), [first]: false })).toBe(next);
    });
  }

  it("sends every page raw with every switchable codec off", () => {
    for (const scenario of Object.values(BOTH)) expect(encodeScenario(scenario(), selectCodecs([]))).toBe("raw");
  });
});

// ---- handshake features -------------------------------------------------------------------

describe("handshake features", () => {
  it("are the codec features, then the engine's, with no name twice", () => {
    expect(ALL_FEATURES).toEqual([...CODEC_FEATURES, ...ENGINE_FEATURES]);
    expect(unique(ALL_FEATURES)).toBe(true);
    expect(CODEC_FEATURES).toEqual(CODECS.flatMap((c) => (c.feature ? [c.feature] : [])));
  });

  it("offer every codec not switched off", () => {
    expect(offerFeatures()).toEqual(ALL_FEATURES);
    expect(offerFeatures(selectAllCodecs())).toEqual(ALL_FEATURES);
    expect(offerFeatures({ xbzrle: false, unchanged: false })).toEqual(ALL_FEATURES.filter((f) => f !== "xbzrle"));
    expect(offerFeatures(selectCodecs([]))).toEqual([...ENGINE_FEATURES]);
  });

  it("round-trip through HELLO and WELCOME: the codecs on afterwards are those offered and accepted", () => {
    const r = rng(11);
    for (let trial = 0; trial < 40; trial++) {
      const flags = selectCodecs(SWITCHABLE_CODECS.filter(() => r() < 0.5));
      const allowed = ALL_FEATURES.filter(() => r() < 0.7);
      const hello = {
        version: PROTOCOL_VERSION,
        pageSize: PAGE_SIZE,
        pageCount: 1,
        features: offerFeatures(flags),
        mode: "precopy",
        nonce: "0".repeat(32),
      };
      const received = Message.HELLO.decode(Message.HELLO.encode(hello));
      const accepted = acceptFeatures(received.features, allowed);
      const welcome = Message.WELCOME.decode(Message.WELCOME.encode({ features: accepted, nonce: "1".repeat(32) }));
      const on = negotiateCodecs(checkAcceptedFeatures(hello.features, welcome.features));
      for (const c of CODECS) {
        if (c.feature === null) continue;
        expect(on[c.name], `${c.name} with flags ${JSON.stringify(flags)}, allowed ${allowed}`).toBe(
          flags[c.name] && allowed.includes(c.feature),
        );
      }
      expect(Object.keys(on).sort()).toEqual(
        CODECS.filter((c) => c.feature !== null)
          .map((c) => c.name)
          .sort(),
      );
    }
  });

  it("drop names a destination does not know; the source refuses an answer it did not offer", () => {
    expect(acceptFeatures(["zero", "teleport", 3, "postcopy"])).toEqual(["zero", "postcopy"]);
    const offered = offerFeatures({ rle: false });
    expect(checkAcceptedFeatures(offered, ["zero", "postcopy"])).toEqual(["zero", "postcopy"]);
    expect(() => checkAcceptedFeatures(offered, ["zero", "rle"])).toThrow(
      expect.objectContaining({ code: "PROTOCOL_MISMATCH", message: expect.stringContaining("not offered: rle") }),
    );
  });
});

// ---- report ------------------------------------------------------------------------------

describe("report counters and columns", () => {
  it("add a batch's counts into the QEMU-named ram counters", () => {
    const report = new MigrationReport();
    for (const counter of CODEC_COUNTERS) expect(report.ram[counter]).toBe(0);
    const counts = emptyCounts();
    COUNT_COLUMNS.forEach((column, i) => (counts[column] = i + 1));
    report.addBatchCounts(counts);
    report.addBatchCounts(counts);
    expect(report.ram.duplicate).toBe(2 * counts.zero);
    expect(report.ram.normal).toBe(2 * counts.raw);
    expect(report.ram["normal-bytes"]).toBe(2 * counts.raw * PAGE_SIZE);
    expect(report.ram["skipped-unchanged"]).toBe(2 * counts.skipped);
    expect(report.ram["xbzrle-pages"]).toBe(2 * counts.xbzrle);
    expect(report.ram["rle-pages"]).toBe(2 * counts.rle);
    expect(report.ram["dedup-pages"]).toBe(2 * counts.dedup);
    expect(report.ram["lz-pages"]).toBe(2 * counts.lz);
    expect(report.ram["pages-sent"]).toBe(
      2 * (counts.zero + counts.raw + counts.xbzrle + counts.rle + counts.lz + counts.dedup),
    );
    expect(RECORD_CODECS.map((c) => c.count)).not.toContain("skipped");
  });

  it("show every count column per round and every counter in the summary", () => {
    const report = new MigrationReport();
    const counts = emptyCounts();
    COUNT_COLUMNS.forEach((column, i) => (counts[column] = 100 + i));
    report.rounds.push({
      round: 0,
      phase: "precopy",
      dirtied: 9,
      sent: 8,
      deferred: 1,
      ...counts,
      bytes: 5,
      seconds: 0.5,
    });
    const text = report.toTable();
    const header = text.split("\n").find((l) => l.trim().startsWith("round"))!;
    expect(header.trim().split(/\s+/)).toEqual([...ROUND_COLUMNS]);
    for (const column of COUNT_COLUMNS) expect(ROUND_COLUMNS).toContain(column);
    expect(text).toMatch(/^duplicate \(zero\) +0 pages$/m);
    expect(text).toMatch(/^normal \(raw\) +0 pages$/m);
    for (const counter of ["skipped-unchanged", "dedup-pages", "xbzrle-pages", "rle-pages"])
      expect(text).toMatch(new RegExp(`^${counter} +0 pages$`, "m"));
  });
});
