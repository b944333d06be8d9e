// The mode predictor of auto mode (engine/auto-predict.ts): the harvests the source
// observed during its probe, replayed on a scaled copy of the guest in the virtual-time
// simulator, once per mode.
//
//   scaled guest:  S = min(n, samplePages) evenly spaced pages of the n, with their real
//                  content; the observed dirty pages that fall on them; the link at
//                  bandwidth × S / n, its send buffer and the engine's frames × S / n (so
//                  that every time — rounds, stop-and-copy, draining the buffer — keeps its
//                  length), the same latency
//   growth:        ν = the share of the probe's last interval that no earlier interval
//                  showed; the replay sends that share of its writes to fresh pages from
//                  its second pass on (dirty-log-replay.ts)
//   per mode:      precopy (the engine's policies, maxRounds), postcopy, hybrid (2 rounds)
//                  → total time, downtime as the guest sees it (pause to running on the
//                  destination), post-copy fault stalls (destination-guest.ts), bytes × n / S
//   fault stalls:  the scaled guest faults on S/n of the pages, and each of its faults
//                  waits 2·latency plus pages on a link S/n as fast; scaled back:
//                  faults × n/S, each 2·latency + (its wait beyond 2·latency) × S/n, at
//                  most the time the scaled guest ran on the destination (a guest that
//                  faults all the time is stalled for the whole push, not longer)
//
// It runs while the source waits before its first round: its cost is wall time (a
// simulation of S pages per mode), not guest time.
import type { WorkloadMeasurement } from "../engine/auto-mode.js";
import {
  DEFAULT_AUTO_WEIGHTS,
  type ModePrediction,
  type PlanContext,
  type PredictedMode,
  scorePrediction,
} from "../engine/auto-predict.js";
import { PAGE_SIZE, type Kernel } from "../kernel/kernel.js";
import { createKernel } from "../kernel/loader.js";
import { DirtyLogReplay } from "./dirty-log-replay.js";
import { runScenario } from "./simulator.js";

const MODES: PredictedMode[] = ["precopy", "hybrid", "postcopy"];

/** Replays the probe's intervals on a scaled guest once per mode (see the file header). */
export async function predictModes(m: WorkloadMeasurement, ctx: PlanContext): Promise<ModePrediction[]> {
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
  // one pair of kernels for every mode's run (each run frees what it allocates)
  const kernels: [Kernel, Kernel] = [
    await createKernel({ initialBytes: S * PAGE_SIZE + (48 << 20) }),
    await createKernel({ initialBytes: S * PAGE_SIZE + (16 << 20) }),
  ];
  for (const mode of o.modes ?? MODES) {
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
    out.push({ ...p, score: scorePrediction(p, weights), inputs: { freshShare: Math.round(fresh * 1000) / 1000 } });
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
