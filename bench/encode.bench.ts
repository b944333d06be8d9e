// The page path of one pass over a guest, both sides in one process: EncodePipeline.encode
// (source) and PageApplier.apply with the incremental digest (destination), against the
// pipeline and applier before the one-pass kernels (bench/support/old-encode-pipeline.ts,
// plus the whole-memory digest pass the old destination made at COMPLETE) and memcpy of
// the same bytes.
//   Run: npx tsx bench/encode.bench.ts [--quick]        (results: bench/results/encode.json)
//
// Guests: 256 MiB (64 MiB with --quick) of incompressible pages, and of the idle recording
// (../shared/datasets, snapshot 0) tiled to that size. One pass = the first round: every
// page in batches of 256, 1 MiB frames (as the engine sends them), each frame applied as
// it fills. Source variants: "snapshot" (the engine today: readPages into the pipeline's
// snapshot, then encode) and "direct" (encodeMemory: the kernel reads guest RAM itself);
// "direct, lz" is "direct" with the LZ stage on (every other row has it off, as the old
// pipeline had no LZ): what LZ costs the source and saves on the wire.
// Timings are the median of RUNS passes after one warm-up pass, on warm destination memory;
// one more row applies into fresh memory (first touch: page faults).
import { randomFillSync } from "node:crypto";
import { DEFAULT_CODECS, EncodePipeline } from "../src/codec/encode-pipeline.js";
import { emptyCounts } from "../src/codec/codecs.js";
import { PageApplier } from "../src/codec/page-applier.js";
import { MemoryDigest } from "../src/engine/digest.js";
import { createKernel, PAGE_SIZE, WasmGuestMemory, type Kernel } from "../src/index.js";
import { loadRecording } from "../src/memory/recording.js";
import { PageRecordWriter } from "../src/wire/page-record.js";
import {
  printTable,
  printTargets,
  QUICK,
  round,
  target,
  timeMemcpy,
  verify,
  writeResults,
  type Target,
} from "./harness.js";
import { OldEncodePipeline, oldApplyRecords } from "./support/old-encode-pipeline.js";

const PAGES = QUICK ? 16384 : 65536;
const BYTES = PAGES * PAGE_SIZE;
const GIB = 2 ** 30;
const BATCH = 256;
const FRAME = 1 << 20;
const RUNS = QUICK ? 3 : 5;
const SEED = 0x0ddba11n;
// LZ off in the rows compared with the old pipeline (it had none); "new, direct, lz" adds it
const CODECS = { ...DEFAULT_CODECS, lz: false, hashSeed: SEED };

type Variant = "old" | "new, snapshot" | "new, direct" | "new, direct, lz";

interface Pass {
  /** Seconds (wall) and CPU seconds of the source's calls, of the destination's, and of the old digest pass. */
  encode: number;
  encodeCpu: number;
  apply: number;
  applyCpu: number;
  digest: number;
  digestCpu: number;
  sent: number;
  digestHex: string;
}

/** Wall and CPU seconds of `fn`, added into `into`. */
function timed(into: { wall: number; cpu: number }, fn: () => void): void {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  fn();
  const t1 = performance.now();
  const c = process.cpuUsage(c0);
  into.wall += (t1 - t0) / 1000;
  into.cpu += (c.user + c.system) / 1e6;
}

/** One pass over `src` into `dst` with a fresh pipeline, writer and digest. */
function runPass(k: Kernel, variant: Variant, src: WasmGuestMemory, dst: WasmGuestMemory): Pass {
  const enc = { wall: 0, cpu: 0 };
  const app = { wall: 0, cpu: 0 };
  const dig = { wall: 0, cpu: 0 };
  const old = variant === "old";
  const codecs = variant === "new, direct, lz" ? { ...CODECS, lz: true } : CODECS;
  const pipeline = old ? new OldEncodePipeline(k, PAGES, CODECS, BATCH) : new EncodePipeline(k, PAGES, codecs, BATCH);
  const writer = new PageRecordWriter(FRAME + BATCH * (PAGE_SIZE + 8) + 64, { kernel: k });
  const digest = new MemoryDigest(k, PAGES, SEED);
  const applier = old ? null : new PageApplier(k, dst, { digest });
  const list = Uint32Array.from({ length: PAGES }, (_, i) => i);
  const counts = emptyCounts();
  let sent = 0;
  const flush = () => {
    if (writer.count === 0) return;
    const { buffer, length } = writer.take();
    const payload = buffer.subarray(0, length);
    sent += length;
    timed(app, () => (applier ? applier.apply(payload) : oldApplyRecords(k, dst, payload)));
  };
  try {
    pipeline.beginRound(0);
    writer.begin(0);
    for (let i = 0; i < PAGES; i += BATCH) {
      const chunk = list.subarray(i, i + BATCH);
      timed(enc, () => {
        if (variant === "new, direct" || variant === "new, direct, lz")
          (pipeline as EncodePipeline).encodeMemory(src, chunk, chunk.length, writer, counts);
        else {
          src.readPages(chunk, pipeline.snapshotView(chunk.length));
          pipeline.encode(chunk, chunk.length, writer, counts);
        }
      });
      if (writer.size >= FRAME) flush();
    }
    flush();
    // the old destination hashed all of memory at COMPLETE; the new one has the table already
    timed(dig, () => (old ? digest.updateFrom(dst) : digest.updateMissing(dst)));
    return {
      encode: enc.wall,
      encodeCpu: enc.cpu,
      apply: app.wall,
      applyCpu: app.cpu,
      digest: dig.wall,
      digestCpu: dig.cpu,
      sent,
      digestHex: digest.digest(),
    };
  } finally {
    pipeline.dispose();
    writer.dispose();
    digest.dispose();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

function fillGuest(src: WasmGuestMemory, input: string): void {
  const mem = src.bytes();
  if (input === "incompressible") {
    for (let o = 0; o < mem.length; o += 1 << 16) randomFillSync(mem.subarray(o, o + (1 << 16)));
    return;
  }
  const base = loadRecording("idle").base;
  for (let o = 0; o < mem.length; o += base.length) mem.set(base.subarray(0, Math.min(base.length, mem.length - o)), o);
}

type Row = Record<string, string | number>;

export async function runEncodeBench(): Promise<{ rows: Row[]; targets: Target[]; file: string }> {
  const rows: Row[] = [];
  const targets: Target[] = [];
  const memcpy = timeMemcpy(BYTES);
  rows.push({
    input: "-",
    variant: "memcpy (ceiling)",
    "src GB/s": round(BYTES / memcpy.seconds / 1e9),
    "src CPU s/GiB": round((memcpy.seconds * GIB) / BYTES, 3),
    "dst GB/s": "-",
    "dst CPU s/GiB": "-",
    "digest s/GiB": "-",
    "both sides CPU s/GiB": "-",
    "MiB sent": "-",
  });
  for (const input of ["incompressible", "idle recording"]) {
    const k = await createKernel({ shared: false });
    const src = new WasmGuestMemory(k, PAGES);
    const dst = new WasmGuestMemory(k, PAGES);
    fillGuest(src, input);
    const want = new MemoryDigest(k, PAGES, SEED);
    want.updateFrom(src);
    const wantHex = want.digest();
    want.dispose();
    const totals: Record<string, number> = {};
    const sourceCpu: Record<string, number> = {};
    for (const variant of ["old", "new, snapshot", "new, direct", "new, direct, lz"] as Variant[]) {
      // verify before timing: the destination holds the source, the digest is the source's
      dst.bytes().fill(1);
      const check = runPass(k, variant, src, dst);
      verify(`${input}, ${variant}: destination = source`, Buffer.compare(dst.bytes(), src.bytes()), 0);
      verify(`${input}, ${variant}: digest`, check.digestHex, wantHex);
      const passes: Pass[] = [];
      for (let i = 0; i < RUNS; i++) passes.push(runPass(k, variant, src, dst));
      const m = (f: (p: Pass) => number) => median(passes.map(f));
      const srcCpu = m((p) => p.encodeCpu);
      const dstCpu = m((p) => p.applyCpu + p.digestCpu);
      totals[variant] = srcCpu + dstCpu;
      sourceCpu[variant] = srcCpu;
      rows.push({
        input,
        variant,
        "src GB/s": round(BYTES / m((p) => p.encode) / 1e9),
        "src CPU s/GiB": round((srcCpu * GIB) / BYTES, 3),
        "dst GB/s": round(BYTES / m((p) => p.apply + p.digest) / 1e9),
        "dst CPU s/GiB": round((dstCpu * GIB) / BYTES, 3),
        "digest s/GiB": round((m((p) => p.digest) * GIB) / BYTES, 3),
        "both sides CPU s/GiB": round(((srcCpu + dstCpu) * GIB) / BYTES, 3),
        "MiB sent": round(check.sent / 2 ** 20, 1),
      });
    }
    targets.push(target(`${input}: old / new (direct) CPU, both sides`, totals.old / totals["new, direct"], ">=", 1));
    if (input === "incompressible")
      targets.push(
        target(
          `${input}: source CPU with lz / without`,
          sourceCpu["new, direct, lz"] / sourceCpu["new, direct"],
          "<=",
          1.1,
        ),
      );
    // first touch: the same pass into memory no page of which was written yet
    const fresh = await createKernel({ shared: false });
    const fsrc = new WasmGuestMemory(fresh, PAGES);
    fsrc.bytes().set(src.bytes());
    const fdst = new WasmGuestMemory(fresh, PAGES);
    const first = runPass(fresh, "new, direct", fsrc, fdst);
    verify(`${input}, fresh destination: digest`, first.digestHex, wantHex);
    rows.push({
      input,
      variant: "new, direct, fresh destination (one pass)",
      "src GB/s": round(BYTES / first.encode / 1e9),
      "src CPU s/GiB": round((first.encodeCpu * GIB) / BYTES, 3),
      "dst GB/s": round(BYTES / (first.apply + first.digest) / 1e9),
      "dst CPU s/GiB": round(((first.applyCpu + first.digestCpu) * GIB) / BYTES, 3),
      "digest s/GiB": round((first.digest * GIB) / BYTES, 3),
      "both sides CPU s/GiB": round(((first.encodeCpu + first.applyCpu + first.digestCpu) * GIB) / BYTES, 3),
      "MiB sent": round(first.sent / 2 ** 20, 1),
    });
    fsrc.dispose();
    fdst.dispose();
    src.dispose();
    dst.dispose();
  }
  const file = writeResults("encode", rows, targets);
  return { rows, targets, file };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { rows, targets, file } = await runEncodeBench();
  console.log(`\nencode + apply benchmark (${QUICK ? "quick" : "full"}, ${BYTES / 2 ** 20} MiB guests)`);
  printTable(rows);
  console.log("");
  printTargets(targets);
  console.log(`\nwrote ${file}`);
}
