// Auto mode that predicts: the dirty log the source observed during its probe
// (auto-mode.ts measureWorkload, its harvest intervals) is replayed once per mode by a
// predictor (sim/mode-prediction.ts: the virtual-time simulator on a scaled copy of the
// guest), and the mode with the lowest weighted score is chosen:
//
//   score = wTotal · total ms + wDowntime · downtime ms + wStall · fault-stall ms
//           (lowest wins; ties go to the earlier of precopy, hybrid, postcopy; runs that
//           did not complete only when none did)
//
// The engine does not import the simulator (the simulator drives the engine): the
// predictor comes in `auto.predictor`; without one, auto mode keeps the fixed rule of
// auto-mode.ts. The simulator passes sim/mode-prediction.ts's by default.
// see: WALM (workload-aware live migration: measure, then pick pre-, post-copy or hybrid).
import type { CodecOptions } from "../codec/encode-pipeline.js";
import type { Kernel } from "../kernel/kernel.js";
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

/** Predicts each mode from the probe (sim/mode-prediction.ts predictModes). */
export type ModePredictor = (m: WorkloadMeasurement, ctx: PlanContext) => Promise<ModePrediction[]>;

export interface AutoModeOptions {
  /** The predictor; without one (or with predict false) the fixed rule of auto-mode.ts decides. */
  predictor?: ModePredictor;
  /** false: the fixed rule only. */
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
  /** What the predictor wants in the report besides (shared by every mode). */
  inputs?: Record<string, number | string | boolean>;
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

/**
 * The auto-mode plan: with a dirty log and predictions on, the predicted best mode (its
 * predictions as decision inputs); otherwise, or when the probe observed nothing to
 * replay, the fixed rule of auto-mode.ts.
 */
export async function planMigration(m: WorkloadMeasurement, ctx: PlanContext): Promise<PredictedPlan> {
  const rule = chooseMigrationPlan(m, ctx.hasDirtyLog, ctx.bandwidthBytesPerSecond, ctx.downtimeLimitMs);
  const predictor = ctx.auto?.predictor;
  if (!predictor || !ctx.hasDirtyLog || ctx.auto?.predict === false || !m.intervals?.length) return rule;
  const predicting = predictor(m, { ...ctx, codecs: { ...rule.codecs, ...ctx.codecs } });
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
  for (const p of predictions) if (p.inputs) Object.assign(inputs, p.inputs);
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
