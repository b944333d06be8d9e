// Real guest-memory recordings (../shared/datasets, format in its README; the package
// carries a copy in recordings/, made by scripts/copy-recordings.mjs at prepack).
//
// A recording set is a base image plus per-interval records of changed pages:
//
//   record   = magic:'DPG1' interval:u32 n:u32 reserved:u32(0) run_s:f64 t_s:f64
//              page_index:u32[n] (ascending)  page_data:u8[n][4096]   (little-endian)
//   snapshot k = idle/base.img  + <set>/base-diff.dpg (not for idle)  + deltas 1..k
//
// Node-only (reads files, Brotli): not exported from the browser entry.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliDecompressSync } from "node:zlib";
import { PagewireError } from "../errors.js";
import { PAGE_SIZE } from "../kernel/abi.js";

const HEADER = 32;

/** One interval of a recording: the pages whose content changed, with the new contents. */
export interface DirtyPageRecord {
  interval: number;
  /** Guest run time since the previous snapshot, seconds. */
  runSeconds: number;
  /** Wall time since snapshot 0, seconds. */
  wallSeconds: number;
  /** Ascending page indices. */
  pages: Uint32Array;
  /** pages.length × 4096 bytes: the new contents, in the order of `pages`. */
  data: Uint8Array;
}

/** A recording format violation (bad magic, truncated record, unordered pages …). */
export class RecordingError extends PagewireError {
  constructor(message: string) {
    super("RECORDING_CORRUPT", message);
  }
}

/** Parses a stream of DPG1 records (already decompressed). Checks every field it relies on. */
export function parseDirtyPageRecords(buf: Uint8Array, pageCount = Infinity): DirtyPageRecord[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: DirtyPageRecord[] = [];
  let o = 0;
  while (o < buf.length) {
    if (o + HEADER > buf.length)
      throw new RecordingError(`record at byte ${o}: header needs ${HEADER} bytes, ${buf.length - o} left`);
    const magic = String.fromCharCode(buf[o], buf[o + 1], buf[o + 2], buf[o + 3]);
    if (magic !== "DPG1") throw new RecordingError(`record at byte ${o}: magic '${magic}', want 'DPG1'`);
    const interval = view.getUint32(o + 4, true);
    const n = view.getUint32(o + 8, true);
    const runSeconds = view.getFloat64(o + 16, true);
    const wallSeconds = view.getFloat64(o + 24, true);
    const size = HEADER + n * 4 + n * PAGE_SIZE;
    if (o + size > buf.length)
      throw new RecordingError(
        `record ${interval} at byte ${o}: ${n} pages need ${size} bytes, ${buf.length - o} left`,
      );
    const pages = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      pages[i] = view.getUint32(o + HEADER + 4 * i, true);
      if (pages[i] >= pageCount)
        throw new RecordingError(`record ${interval}: page ${pages[i]} is past the end of memory (${pageCount} pages)`);
      if (i > 0 && pages[i] <= pages[i - 1])
        throw new RecordingError(
          `record ${interval}: page indices not ascending at position ${i} (${pages[i - 1]}, ${pages[i]})`,
        );
    }
    const start = o + HEADER + n * 4;
    out.push({ interval, runSeconds, wallSeconds, pages, data: buf.subarray(start, start + n * PAGE_SIZE) });
    o += size;
  }
  return out;
}

/** Writes each record's pages into `image` (a whole guest memory, file offset = address). */
export function applyDirtyPageRecord(image: Uint8Array, record: DirtyPageRecord): void {
  for (let i = 0; i < record.pages.length; i++) {
    image.set(record.data.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE), record.pages[i] * PAGE_SIZE);
  }
}

export interface RecordingMeta {
  name: string;
  num_pages: number;
  page_size: number;
  k: number;
  snapshot_sha256: string[];
  intervals: { i: number; n_dirty: number; run_s: number; t_s: number }[];
  [key: string]: unknown;
}

/** A recording set loaded in memory: snapshot 0 and the interval records. */
export interface Recording {
  name: string;
  meta: RecordingMeta;
  pageCount: number;
  /** Snapshot 0 (the idle base plus this set's base diff), 128 MiB for the shipped sets. */
  base: Uint8Array;
  /** Intervals 1..K, in order. */
  deltas: DirtyPageRecord[];
}

const GROUP = "qemu-tcg-128m";

/**
 * Where the shipped recordings are looked for, in order: $PAGEWIRE_DATASETS, the
 * package's own recordings/ (an installed package), ../shared/datasets beside the
 * project folder (a source checkout).
 */
export function datasetsDirCandidates(): string[] {
  const env = process.env.PAGEWIRE_DATASETS;
  return [
    ...(env ? [env] : []),
    fileURLToPath(new URL("../../recordings/", import.meta.url)),
    fileURLToPath(new URL("../../../shared/datasets/", import.meta.url)),
  ];
}

/** The first of datasetsDirCandidates() that holds the recordings (the last one if none does). */
export function defaultDatasetsDir(): string {
  const dirs = datasetsDirCandidates();
  return dirs.find((d) => existsSync(join(d, GROUP, "idle", "meta.json"))) ?? dirs[dirs.length - 1];
}

/**
 * Loads recording `name` (idle, redis, dirtier) of `group` (default qemu-tcg-128m):
 * decompresses the base image and records and rebuilds snapshot 0. ~1 s and 150 MiB.
 */
export function loadRecording(name: string, options: { dir?: string; group?: string } = {}): Recording {
  const root = join(options.dir ?? defaultDatasetsDir(), options.group ?? GROUP);
  if (!options.dir && !existsSync(join(root, name, "meta.json")))
    throw new PagewireError(
      "RECORDING_MISSING",
      `recording '${name}' not found: looked for ${join(options.group ?? GROUP, name, "meta.json")} in ${datasetsDirCandidates().join(", ")} (an installed package carries them in recordings/, a source checkout reads ../shared/datasets; PAGEWIRE_DATASETS=DIR names another copy)`,
    );
  const read = (file: string) => {
    try {
      return new Uint8Array(brotliDecompressSync(readFileSync(join(root, file))));
    } catch (cause) {
      throw new PagewireError(
        "RECORDING_MISSING",
        `cannot read recording file ${join(root, file)}: ${(cause as Error).message}`,
        { cause },
      );
    }
  };
  let meta: RecordingMeta;
  try {
    meta = JSON.parse(readFileSync(join(root, name, "meta.json"), "utf8")) as RecordingMeta;
  } catch (cause) {
    throw new PagewireError(
      "RECORDING_MISSING",
      `cannot read ${join(root, name, "meta.json")}: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
  const pageCount = meta.num_pages;
  const base = read("idle/base.img.br");
  if (base.length !== pageCount * PAGE_SIZE)
    throw new RecordingError(`idle/base.img: ${base.length} bytes, want ${pageCount * PAGE_SIZE}`);
  if (name !== "idle")
    for (const r of parseDirtyPageRecords(read(`${name}/base-diff.dpg.br`), pageCount)) applyDirtyPageRecord(base, r);
  const deltas = parseDirtyPageRecords(read(`${name}/deltas.dpg.br`), pageCount);
  return { name, meta, pageCount, base, deltas };
}
