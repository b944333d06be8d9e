// Build step of the demo: cuts a small window out of a real guest recording
// (../shared/datasets, see src/memory/recording.ts) into demo/public/recordings/<set>.pwra.gz (gzip, ~1.6 MiB), which the
// page replays as the "recording" workload. The window is the aligned run of
// WINDOW_PAGES pages that the recorded guest dirtied most. Without the datasets it
// writes an empty recordings/manifest.json (exit 0); the page then hides the recording workload.
//
//   tsx demo/prepare-recording.ts [set=redis] [windowPages=512]
import { existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { defaultDatasetsDir, loadRecording } from "../src/memory/recording.js";
import { writeRecordingAsset, type AssetRecord } from "./src/recording-asset.js";
import { PAGE_SIZE } from "../src/kernel/abi.js";

const set = process.argv[2] ?? "redis";
const windowPages = Number(process.argv[3] ?? 512);
const here = dirname(fileURLToPath(import.meta.url));
const outDir = join(here, "public", "recordings");
const outFile = join(outDir, `${set}.pwra.gz`);
const dir = process.env.PAGEWIRE_DATASETS ?? defaultDatasetsDir();

// recordings/manifest.json lists the assets the page may fetch (none without the datasets)
const manifest = join(outDir, "manifest.json");
mkdirSync(outDir, { recursive: true });
if (!existsSync(join(dir, "qemu-tcg-128m", set))) {
  writeFileSync(manifest, JSON.stringify({ recordings: [] }) + "\n");
  console.warn(`prepare-recording: no recording ${set} under ${dir}; the demo runs without the recording workload`);
  process.exit(0);
}
const t0 = performance.now();
const rec = loadRecording(set, { dir });
// the busiest aligned window
const windows = Math.floor(rec.pageCount / windowPages);
const hits = new Float64Array(windows);
for (const d of rec.deltas) for (const p of d.pages) if (p < windows * windowPages) hits[Math.floor(p / windowPages)]++;
let best = 0;
for (let w = 1; w < windows; w++) if (hits[w] > hits[best]) best = w;
const first = best * windowPages;
const cut = (
  interval: number,
  runSeconds: number,
  pages: ArrayLike<number>,
  pageData: (i: number) => Uint8Array,
): AssetRecord => {
  const keep: number[] = [];
  for (let i = 0; i < pages.length; i++) if (pages[i] >= first && pages[i] < first + windowPages) keep.push(i);
  const data = new Uint8Array(keep.length * PAGE_SIZE);
  keep.forEach((i, j) => data.set(pageData(i), j * PAGE_SIZE));
  return { interval, runSeconds, pages: Uint32Array.from(keep, (i) => pages[i] - first), data };
};
const all = Array.from({ length: windowPages }, (_, i) => first + i);
const nonZero = all.filter((p) => rec.base.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE).some((b) => b !== 0));
const base = cut(0, 0, nonZero, (i) => rec.base.subarray(nonZero[i] * PAGE_SIZE, (nonZero[i] + 1) * PAGE_SIZE));
const deltas = rec.deltas.map((d) =>
  cut(d.interval, d.runSeconds, d.pages, (i) => d.data.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE)),
);
writeFileSync(
  outFile,
  gzipSync(writeRecordingAsset({ name: set, pageCount: windowPages, firstPage: first, base, deltas }), { level: 9 }),
);
writeFileSync(
  manifest,
  JSON.stringify({ recordings: [{ name: set, file: `${set}.pwra.gz`, pages: windowPages, firstPage: first }] }) + "\n",
);
const dirtied = deltas.reduce((s, d) => s + d.pages.length, 0);
console.log(
  `prepare-recording: ${set} pages ${first}..${first + windowPages - 1} (${base.pages.length} non-zero), ` +
    `${deltas.length} intervals, ${dirtied} dirty pages -> ${outFile} (${(statSync(outFile).size / 2 ** 20).toFixed(1)} MiB, ${Math.round(performance.now() - t0)} ms)`,
);
