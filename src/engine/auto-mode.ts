// Workload-aware mode choice ("auto"): measure before migrating, then pick the mode and
// its parameters by a fixed rule. The inputs and the decision go into the report.
//
//   measure (probeMs of guest run time, defaultProbeMs when not given: 10 % of one pass over
//   the guest at the rate limit, within 20..200 ms; one harvest after the first half, then the second
//   half in PROBE_SLICES harvests, each kept as an observed interval for auto-predict.ts):
//     D   dirty rate, pages/s (distinct pages of the second half over its duration)
//     W   writable working set: distinct pages dirtied over the whole probe
//     z   zero-page share, d duplicate share (a sample of ≤ 4096 pages, hashed)
//     c   bytes changed per dirtied page: the sample is read before and after the probe,
//         and its dirtied pages compared byte by byte (a small update or a whole page)
//   with B = bandwidth in pages/s (maxBandwidth, or 1 Gbit/s when unlimited), T = downtime limit:
//     no dirty log                     → stop-and-copy
//     W ≤ B·T  or  D ≤ 0.3·B           → precopy, vanilla (converges fast: each round shrinks ≥ 3×)
//     D ≤ 0.8·B                        → precopy, reuse-distance (skip pages that will be rewritten)
//     otherwise (D > 0.8·B)            → hybrid: 2 pre-copy rounds, then post-copy (pre-copy would not converge)
//   codecs: dedup on when d ≥ 1 %; every other codec always on.
// This rule is the fallback; auto-predict.ts replays the observed intervals in the
// virtual-time simulator for each mode and picks by predicted time and downtime.
// see: Sahni & Varma 2012 (hybrid pre/post-copy); Hines & Gopalan 2009; QEMU calc-dirty-rate.
import { hashPages } from "../kernel/pagehash.js";
import { selectAllCodecs } from "../codec/codecs.js";
import type { CodecOptions } from "../codec/encode-pipeline.js";
import { DirtyBitmap } from "../kernel/dirty-bitmap.js";
import { PAGE_SIZE, type Kernel } from "../kernel/kernel.js";
import type { DirtyLog, GuestMemory } from "../memory/guest-memory.js";
import type { Clock } from "../util/clock.js";

export interface WorkloadMeasurement {
  dirtyPagesPerSecond: number;
  workingSetPages: number;
  zeroShare: number;
  duplicateShare: number;
  probeSeconds: number;
  samplePages: number;
  /** Mean bytes that differ, over the probe, in the sampled pages it dirtied (absent when none was). */
  changedBytesPerDirtyPage?: number;
  /** The harvests of the probe, in order: what the source's dirty log observed (absent without a dirty log). */
  intervals?: { seconds: number; pages: Uint32Array }[];
}

/** Harvests in the second half of the probe (its dirty rate is over their union). */
export const PROBE_SLICES = 4;

/** The longest probe, ms (when autoProbeMs is not given). */
export const DEFAULT_PROBE_MS = 200;
/** Share of one pass over the guest at the rate limit the probe may take (when autoProbeMs is not given). */
export const PROBE_PASS_SHARE = 0.1;
/** The shortest probe, ms: the dirty log still gets harvested 1 + PROBE_SLICES times over it. */
export const MIN_PROBE_MS = 20;

/**
 * The probe's length when the caller gives none: 10 % of the time one pass over the guest
 * takes at the rate limit, within 20..200 ms. Every mode moves every page at least once,
 * so the probe then adds at most a tenth to the shortest possible migration; a small guest
 * on a fast link (64 MiB at 100 MiB/s: a 640 ms pass) is watched 64 ms instead of 200.
 */
export function defaultProbeMs(pageCount: number, bandwidthBytesPerSecond: number): number {
  if (!(bandwidthBytesPerSecond > 0 && Number.isFinite(bandwidthBytesPerSecond))) return DEFAULT_PROBE_MS;
  const passMs = ((pageCount * PAGE_SIZE) / bandwidthBytesPerSecond) * 1000;
  return Math.min(DEFAULT_PROBE_MS, Math.max(MIN_PROBE_MS, PROBE_PASS_SHARE * passMs));
}

export interface MigrationPlan {
  mode: "precopy" | "postcopy" | "hybrid" | "stop-and-copy";
  selection: string;
  maxRounds?: number;
  codecs: CodecOptions;
  rule: string;
}

/** Runs the probe: two harvests over `probeMs`, and a content sample of up to 4096 pages. */
export async function measureWorkload(
  k: Kernel,
  memory: GuestMemory,
  dirtyLog: DirtyLog | undefined,
  clock: Clock,
  probeMs: number,
): Promise<WorkloadMeasurement> {
  const n = memory.pageCount;
  let dirtyRate = 0;
  let wws = 0;
  // content sample: evenly spaced pages, read before the probe too (what the dirtied ones changed)
  const sample = Math.min(n, 4096);
  const step = n / sample;
  const pages = Array.from({ length: sample }, (_, i) => Math.floor(i * step));
  const region = k.alloc(sample * PAGE_SIZE, PAGE_SIZE);
  let before: Uint8Array | null = null;
  if (dirtyLog) {
    memory.readPages(pages, k.bytes(region));
    before = k.bytes(region).slice();
  }
  let dirtied: DirtyBitmap | null = null;
  const t0 = clock.now();
  let intervals: WorkloadMeasurement["intervals"];
  if (dirtyLog) {
    const a = new DirtyBitmap(k, n);
    const b = new DirtyBitmap(k, n);
    const slice = new DirtyBitmap(k, n);
    intervals = [];
    try {
      dirtyLog.start();
      await clock.sleep(probeMs / 2000);
      await dirtyLog.harvest(a);
      const t1 = clock.now();
      intervals.push({ seconds: t1 - t0, pages: a.collect() });
      let last = t1;
      for (let i = 0; i < PROBE_SLICES; i++) {
        await clock.sleep(probeMs / 2000 / PROBE_SLICES);
        await dirtyLog.harvest(slice);
        const t = clock.now();
        intervals.push({ seconds: t - last, pages: slice.collect() });
        last = t;
        b.or(slice);
      }
      dirtyRate = last > t1 ? b.count() / (last - t1) : 0;
      wws = a.or(b).count();
      dirtied = new DirtyBitmap(k, n).copyFrom(a);
      dirtyLog.stop();
    } finally {
      a.dispose();
      b.dispose();
      slice.dispose();
    }
  }
  let zero = 0;
  let dup = 0;
  let changed: number | undefined;
  try {
    memory.readPages(pages, k.bytes(region));
    if (before && dirtied) {
      const after = k.bytes(region);
      let bytes = 0;
      let count = 0;
      for (let i = 0; i < sample; i++) {
        if (!dirtied.get(pages[i])) continue;
        count++;
        for (let j = i * PAGE_SIZE; j < (i + 1) * PAGE_SIZE; j++) if (before[j] !== after[j]) bytes++;
      }
      if (count) changed = bytes / count;
    }
    const zeros = new DirtyBitmap(k, sample);
    zero = k.zeroPages(k.bytes(region), sample, zeros);
    zeros.dispose();
    const hashes = hashPages(k, k.bytes(region), sample, new BigUint64Array(2 * sample), { bits: 128 });
    const seen = new Set<string>();
    for (let i = 0; i < sample; i++) {
      const h = `${hashes[2 * i]}:${hashes[2 * i + 1]}`;
      if (seen.has(h)) dup++;
      else seen.add(h);
    }
  } finally {
    k.free(region);
    dirtied?.dispose();
  }
  return {
    dirtyPagesPerSecond: dirtyRate,
    workingSetPages: wws,
    zeroShare: sample ? zero / sample : 0,
    duplicateShare: sample ? dup / sample : 0,
    probeSeconds: clock.now() - t0,
    samplePages: sample,
    changedBytesPerDirtyPage: changed,
    intervals,
  };
}

/** The rule in this file's header, as a pure function. */
export function chooseMigrationPlan(
  m: WorkloadMeasurement,
  hasDirtyLog: boolean,
  bandwidthBytesPerSecond: number,
  downtimeLimitMs: number,
): MigrationPlan {
  const B = (Number.isFinite(bandwidthBytesPerSecond) ? bandwidthBytesPerSecond : 125e6) / PAGE_SIZE;
  const fitsDowntime = m.workingSetPages <= B * (downtimeLimitMs / 1000);
  const codecs: CodecOptions = { ...selectAllCodecs(), dedup: m.duplicateShare >= 0.01 };
  if (!hasDirtyLog) return { mode: "stop-and-copy", selection: "vanilla", codecs, rule: "no dirty log: stop-and-copy" };
  const D = m.dirtyPagesPerSecond;
  if (fitsDowntime || D <= 0.3 * B) {
    return {
      mode: "precopy",
      selection: "vanilla",
      codecs,
      rule: fitsDowntime ? "working set fits the downtime: precopy" : "dirty rate ≤ 0.3 × bandwidth: precopy",
    };
  }
  if (D <= 0.8 * B)
    return {
      mode: "precopy",
      selection: "reuse-distance",
      codecs,
      rule: "dirty rate ≤ 0.8 × bandwidth: precopy, reuse-distance selection",
    };
  return {
    mode: "hybrid",
    selection: "vanilla",
    maxRounds: 2,
    codecs,
    rule: "dirty rate > 0.8 × bandwidth: hybrid (2 pre-copy rounds, then post-copy)",
  };
}
