// The recording asset written by demo/prepare-recording.ts: a window of a real guest
// recording (../shared/datasets), small enough for a web page.
//
//   asset  = magic:"PWRA" pageCount:u32 firstPage:u32 nameLength:u32 name[nameLength]
//            pad to 4   record{1 + K}                                  (little-endian)
//   record = the DPG1 record of src/memory/recording.ts, page indices relative to the window:
//            magic:"DPG1" interval:u32 n:u32 reserved:u32 run_s:f64 t_s:f64 page:u32[n] data:u8[n][4096]
//   record 0 (interval 0) holds the window's non-zero pages of snapshot 0; records 1..K the
//   pages changed in each interval.
import { PAGE_SIZE } from "../../src/kernel/abi.js";

export interface AssetRecord {
  interval: number;
  runSeconds: number;
  pages: Uint32Array;
  data: Uint8Array;
}

export interface RecordingAsset {
  name: string;
  pageCount: number;
  /** First page of the window in the recorded guest. */
  firstPage: number;
  base: AssetRecord;
  deltas: AssetRecord[];
}

export function parseRecordingAsset(buffer: ArrayBuffer): RecordingAsset {
  const buf = new Uint8Array(buffer);
  const v = new DataView(buffer);
  const magic = (o: number) => String.fromCharCode(buf[o], buf[o + 1], buf[o + 2], buf[o + 3]);
  if (buf.length < 16 || magic(0) !== "PWRA") throw new Error(`recording asset: bad magic '${magic(0)}'`);
  const pageCount = v.getUint32(4, true);
  const firstPage = v.getUint32(8, true);
  const nameLength = v.getUint32(12, true);
  const name = new TextDecoder().decode(buf.subarray(16, 16 + nameLength));
  let o = (16 + nameLength + 3) & ~3;
  const records: AssetRecord[] = [];
  while (o < buf.length) {
    if (o + 32 > buf.length || magic(o) !== "DPG1") throw new Error(`recording asset: bad record at byte ${o}`);
    const interval = v.getUint32(o + 4, true);
    const n = v.getUint32(o + 8, true);
    const runSeconds = v.getFloat64(o + 16, true);
    const end = o + 32 + n * 4 + n * PAGE_SIZE;
    if (end > buf.length) throw new Error(`recording asset: record ${interval} truncated`);
    const pages = new Uint32Array(buffer.slice(o + 32, o + 32 + n * 4));
    for (const p of pages) if (p >= pageCount) throw new Error(`recording asset: page ${p} outside ${pageCount}`);
    records.push({ interval, runSeconds, pages, data: buf.subarray(o + 32 + n * 4, end) });
    o = end;
  }
  if (records.length === 0 || records[0].interval !== 0) throw new Error("recording asset: no base record");
  return { name, pageCount, firstPage, base: records[0], deltas: records.slice(1) };
}

/** Writes an asset (used by prepare-recording.ts in Node). */
export function writeRecordingAsset(a: RecordingAsset): Uint8Array {
  const name = new TextEncoder().encode(a.name);
  const head = (16 + name.length + 3) & ~3;
  const all = [a.base, ...a.deltas];
  const size = head + all.reduce((s, r) => s + 32 + r.pages.length * (4 + PAGE_SIZE), 0);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  out.set(new TextEncoder().encode("PWRA"), 0);
  v.setUint32(4, a.pageCount, true);
  v.setUint32(8, a.firstPage, true);
  v.setUint32(12, name.length, true);
  out.set(name, 16);
  let o = head;
  let t = 0;
  for (const r of all) {
    out.set(new TextEncoder().encode("DPG1"), o);
    v.setUint32(o + 4, r.interval, true);
    v.setUint32(o + 8, r.pages.length, true);
    v.setFloat64(o + 16, r.runSeconds, true);
    t += r.runSeconds;
    v.setFloat64(o + 24, t, true);
    for (let i = 0; i < r.pages.length; i++) v.setUint32(o + 32 + 4 * i, r.pages[i], true);
    out.set(r.data.subarray(0, r.pages.length * PAGE_SIZE), o + 32 + r.pages.length * 4);
    o += 32 + r.pages.length * (4 + PAGE_SIZE);
  }
  return out;
}
