// Options shared by `simulate` and `compare`: the guest (workload or trace), the link,
// the engine configuration (preset + overrides) and the run (seed, CPU time).
import { withFakeDirty } from "../sim/fake-dirty-replay.js";
import { PAGE_SIZE } from "../kernel/kernel.js";
import { openRecording, TraceWorkload } from "../workload/trace.js";
import type { Recording } from "../memory/recording.js";
import { listPolicies } from "../policy/registry.js";
import { findPreset, PRESETS, type Preset } from "../sim/presets.js";
import type { CpuTimeMode, ScenarioOptions } from "../sim/simulator.js";
import type { ContentModel } from "../workload/content.js";
import { createWorkload } from "../workload/registry.js";
import { isSwitchableCodec, selectCodecs, SWITCHABLE_CODECS } from "../codec/codecs.js";
import type { CodecOptions } from "../codec/encode-pipeline.js";
import type { FlagUses, Parsed } from "./command.js";
import { formatBytes } from "./units.js";
import { UsageError } from "./usage.js";

const GUEST = "guest";
const ENGINE = "link and engine";
const RUN = "run";

/** Flags shared by simulate and compare: the guest's shape, the link, the engine, the run. */
export const SCENARIO_FLAGS = {
  "guest-size": { group: GUEST },
  "dirty-rate": { group: GUEST },
  "write-size": { group: GUEST },
  content: { group: GUEST },
  "fake-dirty": { group: GUEST },
  "working-set": { group: GUEST },
  warmup: { group: GUEST },
  latency: { group: ENGINE },
  jitter: { group: ENGINE },
  "max-bandwidth": { group: ENGINE },
  mode: { group: ENGINE },
  "downtime-limit": { group: ENGINE, default: null, absent: "the preset's, 300ms" },
  "max-rounds": { group: ENGINE },
  "min-round": { group: ENGINE },
  "xbzrle-cache": { group: ENGINE },
  cpu: { group: ENGINE },
  "cpu-ns-per-page": { group: ENGINE },
  seed: { group: RUN },
  json: { group: RUN, help: "print JSON instead of the table" },
  html: { group: RUN },
  progress: { group: RUN },
} as const satisfies FlagUses;

/** The help headings of the scenario flags, for the commands' own flags. */
export const GROUPS = { GUEST, ENGINE, CONFIG: "engine configuration" } as const;

type Values = Parsed<typeof SCENARIO_FLAGS>;

export const PRESETS_HELP = `presets:${PRESETS.map((p) => `\n  ${p.name.padEnd(18)} ${p.description}`).join("")}`;

export interface Guest {
  label: string;
  kind: "workload" | "trace";
  create: (seed: number) => { workload: ScenarioOptions["workload"]; pageCount: number };
}

const recordings = new Map<string, Recording>();

/** A guest by workload name or trace; traces are loaded once per process. */
export function guestFor(v: Values, spec: { workload?: string; trace?: string }): Guest {
  if (spec.trace) {
    const name = spec.trace;
    // identical rewrites the recording cannot hold (QEMU's dirty log sees them): share f of the dirtied pages
    const fakeDirty = v["fake-dirty"];
    if (fakeDirty !== undefined && fakeDirty > 0.99)
      throw new UsageError(`--fake-dirty: a trace takes a share of 0..0.99, got ${fakeDirty}`);
    return {
      label: `trace:${name.split("/").filter(Boolean).pop()}${fakeDirty ? ` +${fakeDirty} fake-dirty` : ""}`,
      kind: "trace",
      create: (seed) => {
        let rec = recordings.get(name);
        if (!rec) recordings.set(name, (rec = openRecording(name)));
        return { workload: withFakeDirty(new TraceWorkload(rec), fakeDirty, seed), pageCount: rec.pageCount };
      },
    };
  }
  const name = spec.workload ?? "working-set";
  const bytes = v["guest-size"];
  const pageCount = Math.floor(bytes / PAGE_SIZE);
  if (pageCount < 16 || pageCount > 2 ** 19)
    throw new UsageError(`--guest-size: want 64KiB..2GiB, got ${formatBytes(bytes)}`);
  const options = {
    dirtyRate: v["dirty-rate"],
    writeSize: v["write-size"],
    content: v.content as ContentModel | undefined,
    fakeDirtyShare: v["fake-dirty"],
    workingSetShare: v["working-set"],
  };
  return {
    label: name,
    kind: "workload",
    create: (seed) => ({ workload: createWorkload(name, { ...options, seed }), pageCount }),
  };
}

export function presetFor(name: string): Preset {
  const p = findPreset(name);
  if (!p) throw new UsageError(`--preset: unknown preset '${name}' (${PRESETS.map((x) => x.name).join(", ")})`);
  return p;
}

export function checkPolicy(kind: "selection" | "termination" | "non-convergence", name: string): string {
  const names = listPolicies(kind).map((p) => p.name);
  if (!names.includes(name)) throw new UsageError(`--${kind}: unknown policy '${name}' (${names.join(", ")})`);
  return name;
}

/** Codec flags from "zero,xbzrle" or "none" or "all". */
export function parseCodecs(text: string): CodecOptions {
  const list =
    text === "none"
      ? []
      : text === "all"
        ? [...SWITCHABLE_CODECS]
        : text
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean);
  const unknown = list.find((s) => !isSwitchableCodec(s));
  if (unknown !== undefined)
    throw new UsageError(`--codecs: unknown stage '${unknown}' (${SWITCHABLE_CODECS.join(", ")}, all, none)`);
  return selectCodecs(list.filter(isSwitchableCodec));
}

/** Engine and run options (everything but the guest, the bandwidth and the configuration). */
export function runOptions(
  v: Values,
): Omit<ScenarioOptions, "workload" | "pageCount" | "bandwidth"> & { seed: number } {
  return {
    seed: v.seed,
    latency: v.latency,
    jitter: v.jitter,
    maxBandwidth: v["max-bandwidth"],
    mode: v.mode as ScenarioOptions["mode"],
    downtimeLimitMs: v["downtime-limit"] !== undefined ? v["downtime-limit"] * 1000 : undefined,
    maxRounds: v["max-rounds"],
    minRoundMs: v["min-round"] * 1000,
    warmupSeconds: v.warmup,
    cpu: v.cpu as CpuTimeMode,
    cpuNsPerPage: v["cpu-ns-per-page"],
  };
}

/** An engine configuration: a preset with optional overrides, and its label. */
export interface Config {
  label: string;
  preset: Preset;
  codecs: CodecOptions;
  policy: Preset["policy"];
  downtimeLimitMs: number;
}

export function makeConfig(
  preset: Preset,
  over: {
    selection?: string;
    termination?: string;
    nonConvergence?: string;
    codecs?: string;
    xbzrleCache?: number;
    downtimeLimitMs?: number;
  },
  label?: string,
): Config {
  const codecs: CodecOptions = { ...preset.codecs, ...(over.codecs !== undefined ? parseCodecs(over.codecs) : {}) };
  if (over.xbzrleCache !== undefined) codecs.xbzrleCacheBytes = over.xbzrleCache;
  const policy = {
    selection: over.selection ? checkPolicy("selection", over.selection) : preset.policy.selection,
    termination: over.termination ? checkPolicy("termination", over.termination) : preset.policy.termination,
    nonConvergence:
      over.nonConvergence === "none"
        ? undefined
        : over.nonConvergence
          ? checkPolicy("non-convergence", over.nonConvergence)
          : preset.policy.nonConvergence,
  };
  const parts = [
    preset.name,
    over.selection,
    over.termination,
    over.nonConvergence,
    over.codecs !== undefined ? `codecs=${over.codecs}` : undefined,
  ].filter(Boolean);
  return {
    label: label ?? parts.join("/"),
    preset,
    codecs,
    policy,
    downtimeLimitMs: over.downtimeLimitMs ?? preset.downtimeLimitMs,
  };
}
