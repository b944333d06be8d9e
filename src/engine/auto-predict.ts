// Auto mode that predicts: the dirty log the source observed during its probe
// (auto-mode.ts measureWorkload, its harvest intervals) is replayed in the virtual-time
// simulator once per mode, and the mode with the lowest weighted score is chosen.
//
//   scaled guest:  S = min(n, samplePages) evenly spaced pages of the n, with their real
//                  content; the observed dirty pages that fall on them; the link at
//                  bandwidth × S / n, its send buffer and the engine's frames × S / n (so
//                  that every time — rounds, stop-and-copy, draining the buffer — keeps its
//                  length), the same latency
//   growth:        ν = the share of the probe's last interval that no earlier interval
//                  showed; the replay sends that share of its writes to fresh pages from
//                  its second pass on (sim/dirty-log-replay.ts)
//   per mode:      precopy (the engine's policies, maxRounds), postcopy, hybrid (2 rounds)
//                  → total time, downtime as the guest sees it (pause to running on the
//                  destination), post-copy fault stalls (destination-guest.ts), bytes × n / S
//   score          = wTotal · total ms + wDowntime · downtime ms + wStall · stall ms
//                  (lowest wins; ties go to the earlier of precopy, hybrid, postcopy)
//
//   fault stalls:  the scaled guest faults on S/n of the pages, and each of its faults
//                  waits 2·latency plus pages on a link S/n as fast; scaled back:
//                  faults × n/S, each 2·latency + (its wait beyond 2·latency) × S/n, at
//                  most the time the scaled guest ran on the destination (a guest that
//                  faults all the time is stalled for the whole push, not longer)
//
// The prediction runs while the source waits before its first round (its cost is wall
// time, not guest time: a simulation of S pages per mode).
// see: WALM (workload-aware live migration: measure, then pick pre-, post-copy or hybrid).
import type { CodecOptions } from "../codec/encode-pipeline.js";
import { PAGE_SIZE, type Kernel } from "../kernel/kernel.js";
import type { GuestMemory } from "../memory/guest-memory.js";
import type { Clock } from "../util/clock.js";
import { chooseMigrationPlan, type MigrationPlan, type WorkloadMeasurement } from "./auto-mode.js";

export interface AutoModeWeights {
  /** Per ms of predicted total migration time (default 1). */
  totalTime: number;
  /** Per ms of predicted downtime, as the guest sees it (default 10: a stopped guest costs more than a long migration). */
  downtime: number;
  /** Per ms of predicted post-copy fault stall (default 10: a faulting vCPU is stopped, as in downtime). */
  faultStall: number;
}

export const DEFAULT_AUTO_WEIGHTS: AutoModeWeights = { totalTime: 1, downtime: 10, faultStall: 10 };

export type PredictedMode = "precopy" | "postcopy" | "hybrid";

export interface AutoModeOptions {
  /** false: the fixed rule of auto-mode.ts only (default true when the source has a dirty log). */
  predict?: boolean;
  weights?: Partial<AutoModeWeights>;
  /** Pages of the scaled guest (default 4096). */
  samplePages?: number;
  /** One-way link latency assumed, seconds (default 0.0005). */
  latency?: number;
  /** Modes to predict (default all three). */
  modes?: PredictedMode[];
}

export interface ModePrediction {
  mode: PredictedMode;
  completed: boolean;
  totalTimeMs: number;
  downtimeMs: number;
  faultStallMs: number;
  /** Bytes the full guest would send (the scaled run's × n / S). */
  bytes: number;
  /** Rounds of the predicted run (pre-copy rounds, then stop-and-copy or post-copy). */
  rounds: number;
  score: number;
}

/** What the source's auto mode needs beyond the measurement. */
export interface PlanContext {
  kernel: Kernel;
  memory: GuestMemory;
  hasDirtyLog: boolean;
  bandwidthBytesPerSecond: number;
  downtimeLimitMs: number;
  /** The source's policy names (instances cannot be shared with a simulation). */
  policy?: { selection?: unknown; termination?: unknown; nonConvergence?: unknown };
  maxRounds?: number;
  /** The source's own codec settings (over the plan's). */
  codecs?: CodecOptions;
  auto?: AutoModeOptions;
  /** The source's clock: held still while the prediction runs (see planMigration). */
  clock?: Clock;
}

/** A plan with the predictions behind it, as report.decisions inputs. */
export interface PredictedPlan extends MigrationPlan {
  predictions?: ModePrediction[];
  inputs?: Record<string, number | string | boolean>;
}

const ORDER: PredictedMode[] = ["precopy", "hybrid", "postcopy"];

/** The lowest score; ties to the earlier of precopy, hybrid, postcopy; runs that did not complete only when nothing did. */
export function pickPrediction(predictions: ModePrediction[]): ModePrediction {
  const pool = predictions.some((p) => p.completed) ? predictions.filter((p) => p.completed) : predictions;
  return [...pool].sort((a, b) => a.score - b.score || ORDER.indexOf(a.mode) - ORDER.indexOf(b.mode))[0];
}

export function scorePrediction(
  p: Pick<ModePrediction, "totalTimeMs" | "downtimeMs" | "faultStallMs">,
  w: AutoModeWeights,
): number {
  return w.totalTime * p.totalTimeMs + w.downtime * p.downtimeMs + w.faultStall * p.faultStallMs;
}

/** Replays the probe's intervals on a scaled guest once per mode (see the file header). */
export async function predictModes(m: WorkloadMeasurement, ctx: PlanContext): Promise<ModePrediction[]> {
  const { runScenario } = await import("../sim/simulator.js"); // the simulator drives the engine: no static cycle
  const { DirtyLogReplay } = await import("../sim/dirty-log-replay.js");
  const k = ctx.kernel;
  const n = ctx.memory.pageCount;
  const o = ctx.auto ?? {};
  const weights = { ...DEFAULT_AUTO_WEIGHTS, ...o.weights };
  const S = Math.max(1, Math.min(n, o.samplePages ?? 4096));
  const step = n / S;
  const pageOf = (i: number) => Math.floor(i * step);
  const index = new Int32Array(n).fill(-1);
  for (let i = 0; i < S; i++) index[pageOf(i)] = i;
  const intervals = (m.intervals ?? []).map((iv) => {
    const pages: number[] = [];
    for (const p of iv.pages) if (index[p] >= 0) pages.push(index[p]);
    return { seconds: iv.seconds, pages };
  });
  const fresh = freshShare(m.intervals ?? []);
  // the sampled pages' content now
  const content = new Uint8Array(S * PAGE_SIZE);
  const chunk = 256;
  const region = k.alloc(chunk * PAGE_SIZE, PAGE_SIZE);
  try {
    for (let i = 0; i < S; i += chunk) {
      const c = Math.min(chunk, S - i);
      const pages = Array.from({ length: c }, (_, j) => pageOf(i + j));
      ctx.memory.readPages(pages, k.bytes(region));
      content.set(k.bytes(region).subarray(0, c * PAGE_SIZE), i * PAGE_SIZE);
    }
  } finally {
    k.free(region);
  }
  const B = Number.isFinite(ctx.bandwidthBytesPerSecond) ? ctx.bandwidthBytesPerSecond : 125e6;
  const scale = S / n;
  const names = (v: unknown) => (typeof v === "string" ? v : undefined);
  const policy = {
    selection: names(ctx.policy?.selection),
    termination: names(ctx.policy?.termination),
    nonConvergence: names(ctx.policy?.nonConvergence),
  };
  const out: ModePrediction[] = [];
  const { createKernel } = await import("../kernel/loader.js");
  // one pair of kernels for every mode's run (each run frees what it allocates)
  const kernels: [Kernel, Kernel] = [
    await createKernel({ initialBytes: S * PAGE_SIZE + (48 << 20) }),
    await createKernel({ initialBytes: S * PAGE_SIZE + (16 << 20) }),
  ];
  for (const mode of o.modes ?? ORDER) {
    const r = await runScenario({
      workload: new DirtyLogReplay(intervals, content, S, fresh, m.changedBytesPerDirtyPage),
      pageCount: S,
      bandwidth: B * scale,
      latency: o.latency ?? 0.0005,
      sendBufferBytes: Math.max(PAGE_SIZE, Math.round((1 << 20) * scale)),
      frameBytes: Math.max(16 * PAGE_SIZE, Math.round((1 << 20) * scale)),
      kernels,
      mode,
      codecs: ctx.codecs,
      policy,
      downtimeLimitMs: ctx.downtimeLimitMs,
      maxRounds: mode === "hybrid" ? 2 : ctx.maxRounds,
      seed: 1,
    });
    const g = r.guest;
    const twoL = 2 * (o.latency ?? 0.0005) * 1000;
    const perFault = g.faults ? twoL + Math.max(0, g.faultStallMs / g.faults - twoL) * scale : 0;
    const ranThere = (g.destinationWorkSeconds * 1000 + g.faultStallMs) | 0;
    const p = {
      mode,
      completed: r.report.status === "completed",
      totalTimeMs: r.report.totalTime,
      downtimeMs: g.downtimeMs,
      faultStallMs: Math.min((g.faults / scale) * perFault, Math.max(ranThere, g.faultStallMs)),
      bytes: r.report.ram.transferred / scale,
      rounds: r.report.rounds.length,
    };
    out.push({ ...p, score: scorePrediction(p, weights) });
  }
  return out;
}

/** The share of the last observed interval's pages that no earlier interval had (0 with fewer than two). */
export function freshShare(intervals: { pages: ArrayLike<number> }[]): number {
  if (intervals.length < 2) return 0;
  const seen = new Set<number>();
  for (let i = 0; i < intervals.length - 1; i++) for (const p of Array.from(intervals[i].pages)) seen.add(p);
  const last = Array.from(intervals[intervals.length - 1].pages);
  return last.length ? last.filter((p) => !seen.has(p)).length / last.length : 0;
}

/**
 * The auto-mode plan: with a dirty log and predictions on, the predicted best mode (its
 * predictions as decision inputs); otherwise, or when the probe observed nothing to
 * replay, the fixed rule of auto-mode.ts.
 */
export async function planMigration(m: WorkloadMeasurement, ctx: PlanContext): Promise<PredictedPlan> {
  const rule = chooseMigrationPlan(m, ctx.hasDirtyLog, ctx.bandwidthBytesPerSecond, ctx.downtimeLimitMs);
  if (!ctx.hasDirtyLog || ctx.auto?.predict === false || !m.intervals?.length) return rule;
  const predicting = predictModes(m, { ...ctx, codecs: { ...rule.codecs, ...ctx.codecs } });
  // on a virtual clock nothing else may move time while the prediction runs in wall time (a
  // peer's timeout would fire at once): zero-length sleeps keep the clock where it is
  if (ctx.clock) {
    let done = false;
    predicting.then(
      () => void (done = true),
      () => void (done = true),
    );
    while (!done) await ctx.clock.sleep(0);
  }
  const predictions = await predicting;
  const best = pickPrediction(predictions);
  const w = { ...DEFAULT_AUTO_WEIGHTS, ...ctx.auto?.weights };
  const inputs: Record<string, number | string | boolean> = {
    weights: `total ${w.totalTime}, downtime ${w.downtime}, fault stall ${w.faultStall}`,
    freshShare: Math.round(freshShare(m.intervals ?? []) * 1000) / 1000,
    changedBytesPerDirtyPage: Math.round(m.changedBytesPerDirtyPage ?? 64),
  };
  const r1 = (x: number) => Math.round(x * 10) / 10;
  for (const p of predictions) {
    inputs[`${p.mode}.totalTimeMs`] = r1(p.totalTimeMs);
    inputs[`${p.mode}.downtimeMs`] = r1(p.downtimeMs);
    inputs[`${p.mode}.faultStallMs`] = r1(p.faultStallMs);
    inputs[`${p.mode}.mib`] = r1(p.bytes / 2 ** 20);
    inputs[`${p.mode}.rounds`] = p.rounds;
    inputs[`${p.mode}.score`] = r1(p.score);
    if (!p.completed) inputs[`${p.mode}.completed`] = false;
  }
  const fmt = (p: ModePrediction) =>
    `${p.mode} ${r1(p.totalTimeMs)} ms / ${r1(p.downtimeMs)} ms down / ${r1(p.faultStallMs)} ms stalls`;
  return {
    mode: best.mode,
    selection: "vanilla", // what the prediction ran (the source's own policy, when it names one, wins anyway)
    maxRounds: best.mode === "hybrid" ? 2 : undefined,
    codecs: rule.codecs,
    rule: `predicted best of ${predictions.map(fmt).join("; ")}`,
    predictions,
    inputs,
  };
}
