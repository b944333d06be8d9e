// Replaying recordings (recording.ts, format in ../shared/datasets/README.md) as a guest,
// and recording a RAM file into the same format.
//
// Replay: a TraceWorkload is a Workload whose init() writes snapshot 0 and whose run(s)
// advances guest time. A recording only says that a page changed during an interval, so
// interval i's pages are written (whole pages, marking them dirty in the memory's dirty
// log) spread evenly over the interval, in a fixed scattered order; when guest time
// reaches the end of interval i all of them are written and memory equals snapshot i:
//
//   interval i:     [T_{i-1}, T_i),  T_i = run_s(1) + … + run_s(i)   (guest run time, not wall time)
//                   page j of n (scattered order) is written at T_{i-1} + (j+1)/n · run_s(i)
//   (writing a whole record at T_i would make dirtying bursty: a round shorter than an
//   interval could then see no dirty page at all, which a running guest never shows)
//   cycling:        after interval K the replay starts again at interval 1, shifted by
//                   T_K: T_{cK+i} = c·T_K + T_i. Each record rewrites its pages with the
//                   contents recorded for them, so the dirty pattern and its timing repeat
//                   exactly; the memory holds the mix of snapshot versions this makes
//                   (pages whose recorded content equals what they hold are written anyway
//                   and show as fake-dirty, as a guest rewriting the same bytes would).
//
// Record: `recordMemory` reads a RAM file every interval, finds the changed pages with a
// hash scan (HashDirtyLog: XXH3-128 per page) and writes DIR/base.img.br (snapshot 0),
// DIR/deltas.dpg.br (one DPG1 record per interval) and DIR/meta.json (sha256 of every
// snapshot, counts and times). run_s is the wall time of the interval: a RAM file does
// not say how long its guest ran.
import { createHash } from "node:crypto";
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, brotliDecompressSync, constants as zc } from "node:zlib";
import { PagewireError } from "../errors.js";
import { PAGE_SIZE } from "../kernel/abi.js";
import { DirtyBitmap } from "../kernel/dirty-bitmap.js";
import type { Kernel } from "../kernel/kernel.js";
import { scatter } from "../util/random.js";
import type { GuestWriter, Workload } from "./workload.js";
import { HashDirtyLog } from "../memory/hash-dirty-log.js";
import {
  loadRecording,
  parseDirtyPageRecords,
  RecordingError,
  type Recording,
  type RecordingMeta,
} from "../memory/recording.js";

/** A recording replayed as a guest: snapshot 0 at init, interval records at recorded guest time, cycling. */
export class TraceWorkload implements Workload {
  readonly name: string;
  readonly recording: Recording;
  /** Interval records written so far (counting cycles). */
  recordsApplied = 0;
  #t = 0;
  #next = 0;
  #written = 0;
  #order: (j: number) => number = (j) => j;
  #ends: number[];

  constructor(recording: Recording) {
    this.recording = recording;
    this.name = `trace:${recording.name}`;
    if (recording.deltas.length === 0) throw new RecordingError(`recording ${recording.name} has no interval records`);
    let t = 0;
    this.#ends = recording.deltas.map((d) => (t += Math.max(d.runSeconds, 1e-6)));
  }

  /** Guest run time of one pass over the intervals, seconds. */
  get cycleSeconds(): number {
    return this.#ends[this.#ends.length - 1];
  }

  #check(mem: GuestWriter): void {
    if (mem.pageCount !== this.recording.pageCount) {
      throw new PagewireError(
        "TRACE_SIZE",
        `trace ${this.recording.name} has ${this.recording.pageCount} pages, guest memory ${mem.pageCount}`,
      );
    }
  }

  init(mem: GuestWriter): void {
    this.#check(mem);
    const chunk = 256 * PAGE_SIZE;
    for (let o = 0; o < this.recording.base.length; o += chunk)
      mem.write(o, this.recording.base.subarray(o, Math.min(o + chunk, this.recording.base.length)));
  }

  run(seconds: number, mem: GuestWriter): void {
    this.#check(mem);
    this.#t += seconds;
    const k = this.#ends.length;
    for (;;) {
      const cycle = Math.floor(this.#next / k);
      const i = this.#next % k;
      const start = cycle * this.cycleSeconds + (i === 0 ? 0 : this.#ends[i - 1]);
      const end = cycle * this.cycleSeconds + this.#ends[i];
      const rec = this.recording.deltas[i];
      const n = rec.pages.length;
      const due = this.#t >= end ? n : Math.max(0, Math.floor((n * (this.#t - start)) / (end - start)));
      if (this.#written === 0 && n > 0) this.#order = scatter(n, i + 1);
      for (; this.#written < due; this.#written++) {
        const j = this.#order(this.#written);
        mem.write(rec.pages[j] * PAGE_SIZE, rec.data.subarray(j * PAGE_SIZE, (j + 1) * PAGE_SIZE));
      }
      if (this.#t < end) break;
      this.#next++;
      this.#written = 0;
      this.recordsApplied++;
    }
  }
}

/** The shipped recordings (../shared/datasets/qemu-tcg-128m). */
export const SHIPPED_RECORDINGS = ["idle", "redis", "dirtier"];

/**
 * A recording by shipped name (idle, redis, dirtier) or by directory: one written by
 * `recordMemory` (base.img.br, deltas.dpg.br, meta.json).
 */
export function openRecording(nameOrDir: string): Recording {
  if (SHIPPED_RECORDINGS.includes(nameOrDir) && !existsSync(join(nameOrDir, "base.img.br")))
    return loadRecording(nameOrDir);
  const read = (f: string) => {
    try {
      return readFileSync(join(nameOrDir, f));
    } catch (cause) {
      throw new PagewireError(
        "RECORDING_MISSING",
        `cannot read recording file ${join(nameOrDir, f)}: ${(cause as Error).message} (traces: ${SHIPPED_RECORDINGS.join(", ")} or a directory written by 'pagewire record')`,
        { cause },
      );
    }
  };
  const meta = JSON.parse(read("meta.json").toString("utf8")) as RecordingMeta;
  const base = new Uint8Array(brotliDecompressSync(read("base.img.br")));
  if (base.length !== meta.num_pages * PAGE_SIZE)
    throw new RecordingError(`${nameOrDir}/base.img: ${base.length} bytes, meta.json says ${meta.num_pages} pages`);
  const deltas = parseDirtyPageRecords(new Uint8Array(brotliDecompressSync(read("deltas.dpg.br"))), meta.num_pages);
  return { name: meta.name ?? nameOrDir, meta, pageCount: meta.num_pages, base, deltas };
}

/** Encodes one DPG1 record (format in recording.ts). */
export function encodeDirtyPageRecord(
  interval: number,
  runSeconds: number,
  wallSeconds: number,
  pages: ArrayLike<number>,
  image: Uint8Array,
): Uint8Array {
  const n = pages.length;
  const out = new Uint8Array(32 + n * 4 + n * PAGE_SIZE);
  const v = new DataView(out.buffer);
  out.set([0x44, 0x50, 0x47, 0x31]); // 'DPG1'
  v.setUint32(4, interval, true);
  v.setUint32(8, n, true);
  v.setUint32(12, 0, true);
  v.setFloat64(16, runSeconds, true);
  v.setFloat64(24, wallSeconds, true);
  for (let i = 0; i < n; i++) v.setUint32(32 + 4 * i, pages[i], true);
  const data = 32 + n * 4;
  for (let i = 0; i < n; i++)
    out.set(image.subarray(pages[i] * PAGE_SIZE, (pages[i] + 1) * PAGE_SIZE), data + i * PAGE_SIZE);
  return out;
}

export interface RecordOptions {
  /** The RAM file (a QEMU memory-backend-file, a memory image). Its size must be a multiple of 4096. */
  memoryFile: string;
  intervalMs: number;
  /** Number of intervals after snapshot 0. */
  count: number;
  outDir: string;
  kernel: Kernel;
  /** Waits between snapshots (default: setTimeout). */
  sleep?: (ms: number) => Promise<void>;
  /** After each snapshot: its index, dirty pages and the measured interval, seconds. */
  onInterval?: (i: number, dirtyPages: number, seconds: number) => void;
}

export interface RecordSummary {
  pageCount: number;
  intervals: { i: number; n_dirty: number; run_s: number; t_s: number }[];
  files: string[];
}

/** Records a RAM file: snapshot 0 and `count` interval records of changed pages (format above). */
export async function recordMemory(o: RecordOptions): Promise<RecordSummary> {
  const fd = openSync(o.memoryFile, "r");
  try {
    const size = fstatSync(fd).size;
    if (size === 0 || size % PAGE_SIZE !== 0)
      throw new PagewireError(
        "RECORD_SIZE",
        `${o.memoryFile}: ${size} bytes is not a positive multiple of ${PAGE_SIZE}`,
      );
    const pageCount = size / PAGE_SIZE;
    const image = new Uint8Array(size);
    const readAll = () => {
      let off = 0;
      while (off < size) {
        const n = readSync(fd, image, off, Math.min(size - off, 1 << 24), off);
        if (n <= 0) throw new PagewireError("RECORD_READ", `${o.memoryFile}: short read at byte ${off} of ${size}`);
        off += n;
      }
    };
    const sha = () => createHash("sha256").update(image).digest("hex");
    const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    mkdirSync(o.outDir, { recursive: true });
    const t0 = performance.now();
    readAll();
    const shas = [sha()];
    const compress = (b: Uint8Array) =>
      brotliCompressSync(b, { params: { [zc.BROTLI_PARAM_QUALITY]: 5, [zc.BROTLI_PARAM_SIZE_HINT]: b.length } });
    writeFileSync(join(o.outDir, "base.img.br"), compress(image));
    const log = new HashDirtyLog(o.kernel, image, pageCount, { seed: 0x5eedn });
    const bm = new DirtyBitmap(o.kernel, pageCount);
    const records: Uint8Array[] = [];
    const intervals: RecordSummary["intervals"] = [];
    let last = performance.now();
    try {
      for (let i = 1; i <= o.count; i++) {
        // snapshots on a fixed timeline (t0 + i·interval): the time a read takes does not
        // stretch every interval; a read longer than the interval makes that one longer
        await sleep(Math.max(0, t0 + i * o.intervalMs - performance.now()));
        readAll();
        const now = performance.now();
        log.harvest(bm);
        const pages = bm.collect();
        const run = (now - last) / 1000;
        const t = (now - t0) / 1000;
        last = now;
        records.push(encodeDirtyPageRecord(i, run, t, pages, image));
        intervals.push({ i, n_dirty: pages.length, run_s: run, t_s: t });
        shas.push(sha());
        o.onInterval?.(i, pages.length, run);
      }
    } finally {
      bm.dispose();
      log.dispose();
    }
    const all = new Uint8Array(records.reduce((s, r) => s + r.length, 0));
    let off = 0;
    for (const r of records) {
      all.set(r, off);
      off += r.length;
    }
    writeFileSync(join(o.outDir, "deltas.dpg.br"), compress(all));
    const meta = {
      name: o.outDir.split("/").filter(Boolean).pop() ?? "recording",
      source: o.memoryFile,
      num_pages: pageCount,
      page_size: PAGE_SIZE,
      k: o.count,
      interval_ms: o.intervalMs,
      snapshot_sha256: shas,
      intervals,
      note: "written by pagewire record: dirty = content differs from the previous snapshot (XXH3-128 scan); run_s is wall time",
    };
    writeFileSync(join(o.outDir, "meta.json"), JSON.stringify(meta, null, 2) + "\n");
    return { pageCount, intervals, files: ["base.img.br", "deltas.dpg.br", "meta.json"].map((f) => join(o.outDir, f)) };
  } finally {
    closeSync(fd);
  }
}
