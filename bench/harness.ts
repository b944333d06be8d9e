// Shared benchmark harness: benchmark.js does warm-up and sampling; we take the median
// of its samples, express every result as a ratio to memcpy of the same bytes measured
// in the same process, and write bench/results/<suite>.json.
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import Benchmark from "benchmark";

export interface Timing {
  name: string;
  /** Median seconds per operation over benchmark.js samples. */
  seconds: number;
  samples: number;
  rme: number;
}

export interface BenchOptions {
  /** Seconds benchmark.js may spend per measurement (after its own warm-up). */
  maxTime: number;
  minSamples: number;
}

export const QUICK = process.argv.includes("--quick");
export const DEFAULT_OPTIONS: BenchOptions = QUICK
  ? { maxTime: 0.25, minSamples: 5 }
  : { maxTime: 1.5, minSamples: 15 };

/** Times `fn` (after benchmark.js warm-up and calibration) and returns the median of its samples. */
export function time(name: string, fn: () => unknown, options: BenchOptions = DEFAULT_OPTIONS): Timing {
  let sink: unknown;
  const bench = new Benchmark(
    name,
    () => {
      sink = fn();
    },
    { maxTime: options.maxTime, minSamples: options.minSamples, initCount: 1 },
  );
  bench.run();
  if (bench.error) throw bench.error;
  void sink;
  const sample = [...bench.stats.sample].sort((a, b) => a - b);
  const mid = sample.length >> 1;
  const seconds = sample.length % 2 ? sample[mid] : (sample[mid - 1] + sample[mid]) / 2;
  return { name, seconds, samples: sample.length, rme: bench.stats.rme };
}

/** memcpy (`Uint8Array.prototype.set`) of `bytes` bytes: the ceiling every result is compared with. */
export function timeMemcpy(bytes: number, options?: BenchOptions): Timing {
  const src = new Uint8Array(bytes).fill(0x5a);
  const dst = new Uint8Array(bytes);
  return time(`memcpy ${bytes} B`, () => dst.set(src), options);
}

/** Fails loudly when a result to be timed is wrong: a benchmark verifies before it times. */
export function verify(what: string, got: unknown, want: unknown): void {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  if (g !== w)
    throw new Error(`benchmark verification failed for ${what}: got ${g.slice(0, 200)}, want ${w.slice(0, 200)}`);
}

export interface Target {
  what: string;
  want: string;
  measured: number;
  ok: boolean;
}

export function target(what: string, measured: number, op: ">=" | "<=", bound: number, unit = "×"): Target {
  return {
    what,
    want: `${op} ${bound}${unit}`,
    measured: round(measured, 3),
    ok: op === ">=" ? measured >= bound : measured <= bound,
  };
}

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function mbps(bytes: number, seconds: number): number {
  return round(bytes / seconds / 1e6, 0);
}

/** Writes bench/results/<suite>.json with machine facts, rows and targets. */
export function writeResults(suite: string, rows: object[], targets: Target[]): string {
  const dir = fileURLToPath(new URL("./results/", import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = `${dir}${suite}${QUICK ? ".quick.tmp" : ""}.json`;
  const doc = {
    suite,
    date: new Date().toISOString(),
    quick: QUICK,
    node: process.version,
    cpu: os.cpus()[0]?.model ?? "unknown",
    cores: os.cpus().length,
    rows,
    targets,
  };
  writeFileSync(file, JSON.stringify(doc, null, 2) + "\n");
  return file;
}

/** Prints rows as an aligned table. */
export function printTable(rows: Record<string, unknown>[]): void {
  if (rows.length === 0) return;
  const cols = Object.keys(rows[0]);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(width[i])).join("  ");
  console.log(line(cols));
  for (const r of rows) console.log(line(cols.map((c) => String(r[c] ?? ""))));
}

export function printTargets(targets: Target[]): void {
  for (const t of targets) console.log(`${t.ok ? "met   " : "MISSED"} ${t.what}: ${t.measured} (target ${t.want})`);
}

/** Seeded PRNG (mulberry32): benchmark inputs are the same on every run. */
export { seededRandom as rng } from "../src/util/random.js";
