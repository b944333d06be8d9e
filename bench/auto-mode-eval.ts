// Auto mode that predicts (src/engine/auto-predict.ts) against a randomly chosen mode, as
// WALM evaluates its choice: over the synthetic workloads and the recordings, in virtual
// time, each guest migrated by auto and by each of precopy, postcopy and hybrid with the
// same codecs and policies (the pagewire preset). A random choice among the three is
// scored by its expected value (the mean of the three runs); the oracle is the mode with
// the lowest score in hindsight.
//   Run: npx tsx bench/auto-mode-eval.ts [--quick]   (writes bench/results/auto-mode.json)
// "chosen" is the fixed run of the mode auto picked: the quality of the choice apart from
// the probe's cost.
// Score (auto mode's default weights): total ms + 10 × downtime ms + 10 × fault-stall ms,
// downtime = pause to running on the destination. Auto's total time includes its probe
// (the guest running under a dirty log: 10 % of one pass at the rate limit, within
// 20..200 ms; engine/auto-mode.ts defaultProbeMs) and nothing for the prediction's own
// wall time (the source's clock stands still meanwhile).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_AUTO_WEIGHTS, scorePrediction } from "../src/engine/auto-predict.js";
import { findPreset } from "../src/sim/presets.js";
import { runScenario } from "../src/sim/simulator.js";
import { openRecording, TraceWorkload } from "../src/workload/trace.js";
import { createWorkload } from "../src/workload/registry.js";
import type { Workload } from "../src/workload/workload.js";

const quick = process.argv.includes("--quick");
const preset = findPreset("pagewire")!;
const MODES = ["precopy", "postcopy", "hybrid"] as const;
type Mode = (typeof MODES)[number] | "auto";

interface Case {
  guest: string;
  pages: number;
  bandwidth: number;
  make: () => Workload;
}

const SYNTHETIC_PAGES = 16384; // 64 MiB
const cases: Case[] = [];
const synthetic = quick
  ? ["idle", "working-set", "write-storm"]
  : ["idle", "cpu", "working-set", "hot-cold", "sequential", "net-ring", "write-storm"];
for (const bw of quick ? [100] : [20, 100])
  for (const name of synthetic)
    cases.push({
      guest: `${name} (64 MiB)`,
      pages: SYNTHETIC_PAGES,
      bandwidth: bw * 2 ** 20,
      make: () => createWorkload(name, { seed: 1 }),
    });
for (const name of quick ? ["redis"] : ["idle", "redis", "dirtier"]) {
  const rec = openRecording(name);
  cases.push({
    guest: `trace:${name}`,
    pages: rec.pageCount,
    bandwidth: 100 * 2 ** 20,
    make: () => new TraceWorkload(rec),
  });
}

interface Run {
  mode: string;
  status: string;
  totalTimeMs: number;
  downtimeMs: number;
  faultStallMs: number;
  mib: number;
  score: number;
  verified: boolean;
}

async function run(c: Case, mode: Mode): Promise<Run> {
  const r = await runScenario({
    workload: c.make(),
    pageCount: c.pages,
    bandwidth: c.bandwidth,
    mode,
    seed: 1,
    codecs: preset.codecs,
    policy: preset.policy,
    downtimeLimitMs: preset.downtimeLimitMs,
    maxRounds: mode === "hybrid" ? 2 : undefined, // auto's hybrid: 2 pre-copy rounds
  });
  const x = {
    totalTimeMs: r.report.totalTime,
    downtimeMs: r.guest.downtimeMs,
    faultStallMs: r.guest.faultStallMs,
  };
  return {
    mode: r.report.mode,
    status: r.report.status,
    ...x,
    mib: r.report.ram.transferred / 2 ** 20,
    score: scorePrediction(x, DEFAULT_AUTO_WEIGHTS),
    verified: r.verified,
  };
}

const round = (x: number) => Math.round(x * 10) / 10;
const rows: Record<string, unknown>[] = [];
const t0 = performance.now();
for (const c of cases) {
  const fixed: Run[] = [];
  for (const m of MODES) fixed.push(await run(c, m));
  const auto = await run(c, "auto");
  const mean = (k: keyof Run) => fixed.reduce((s, r) => s + (r[k] as number), 0) / fixed.length;
  const oracle = fixed.reduce((a, b) => (b.score < a.score ? b : a));
  const row = {
    guest: c.guest,
    bandwidthMiBs: c.bandwidth / 2 ** 20,
    auto: { ...auto, picked: auto.mode },
    random: {
      totalTimeMs: mean("totalTimeMs"),
      downtimeMs: mean("downtimeMs"),
      faultStallMs: mean("faultStallMs"),
      score: mean("score"),
    },
    oracle: oracle.mode,
    chosen: fixed.find((r) => r.mode === auto.mode) ?? auto,
    modes: fixed,
  };
  rows.push(row);
  console.log(
    `${c.guest.padEnd(22)} ${String(c.bandwidth / 2 ** 20).padStart(3)} MiB/s  auto→${auto.mode.padEnd(8)} ` +
      `total ${round(auto.totalTimeMs)} vs random ${round(row.random.totalTimeMs)} ms, ` +
      `down ${round(auto.downtimeMs)} vs ${round(row.random.downtimeMs)} ms, ` +
      `stall ${round(auto.faultStallMs)} vs ${round(row.random.faultStallMs)} ms, ` +
      `score ${round(auto.score)} vs ${round(row.random.score)}; oracle ${oracle.mode}` +
      (fixed.every((r) => r.verified) && auto.verified ? "" : "  NOT VERIFIED"),
  );
}
type Row = { auto: Run & { picked: string }; random: Record<string, number>; oracle: string; chosen: Run };
const rs = rows as unknown as Row[];
const geo = (f: (r: Row) => number) => Math.exp(rs.reduce((s, r) => s + Math.log(Math.max(f(r), 1e-3)), 0) / rs.length);
const summary = {
  cases: rs.length,
  "auto-picked-oracle": rs.filter((r) => r.auto.picked === r.oracle).length,
  "auto-score-below-random": rs.filter((r) => r.auto.score < r.random.score).length,
  "geomean-total-time-auto/random": geo((r) => r.auto.totalTimeMs / r.random.totalTimeMs),
  "geomean-downtime-auto/random": geo((r) => (r.auto.downtimeMs + 0.1) / (r.random.downtimeMs + 0.1)),
  "geomean-score-auto/random": geo((r) => r.auto.score / r.random.score),
  "chosen-score-below-random": rs.filter((r) => r.chosen.score < r.random.score).length,
  "geomean-score-chosen/random": geo((r) => r.chosen.score / r.random.score),
  "geomean-total-time-chosen/random": geo((r) => r.chosen.totalTimeMs / r.random.totalTimeMs),
  "mean-total-time-ms": {
    auto: rs.reduce((s, r) => s + r.auto.totalTimeMs, 0) / rs.length,
    chosen: rs.reduce((s, r) => s + r.chosen.totalTimeMs, 0) / rs.length,
    random: rs.reduce((s, r) => s + r.random.totalTimeMs, 0) / rs.length,
  },
  "mean-downtime-ms": {
    auto: rs.reduce((s, r) => s + r.auto.downtimeMs, 0) / rs.length,
    chosen: rs.reduce((s, r) => s + r.chosen.downtimeMs, 0) / rs.length,
    random: rs.reduce((s, r) => s + r.random.downtimeMs, 0) / rs.length,
  },
  "mean-fault-stall-ms": {
    auto: rs.reduce((s, r) => s + r.auto.faultStallMs, 0) / rs.length,
    chosen: rs.reduce((s, r) => s + r.chosen.faultStallMs, 0) / rs.length,
    random: rs.reduce((s, r) => s + r.random.faultStallMs, 0) / rs.length,
  },
};
console.log(JSON.stringify(summary, null, 2));
console.log(`${((performance.now() - t0) / 1000).toFixed(0)} s wall`);
if (!quick) {
  const dir = join(fileURLToPath(new URL(".", import.meta.url)), "results");
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "auto-mode.json"),
    `${JSON.stringify(
      {
        command: "npx tsx bench/auto-mode-eval.ts",
        preset: "pagewire (codecs and policies for every mode)",
        weights: DEFAULT_AUTO_WEIGHTS,
        seed: 1,
        summary,
        rows,
      },
      null,
      2,
    )}\n`,
  );
}
