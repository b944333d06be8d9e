// Options shared by `simulate` and `compare`: the guest (workload or trace), the link,
// the engine configuration (preset + overrides) and the run (seed, CPU time).
import type { ParseArgsConfig } from "node:util";
import { PAGE_SIZE } from "../kernel/kernel.js";
import { openRecording, TraceWorkload } from "../workload/trace.js";
import type { Recording } from "../memory/recording.js";
import { listPolicies } from "../policy/registry.js";
import { findPreset, PRESETS, type Preset } from "../sim/presets.js";
import type { CpuTimeMode, ScenarioOptions } from "../sim/simulator.js";
import { CONTENT_MODELS, type ContentModel } from "../workload/content.js";
import { createWorkload, listWorkloads } from "../workload/registry.js";
import { isSwitchableCodec, selectCodecs, SWITCHABLE_CODECS } from "../codec/codecs.js";
import type { CodecOptions } from "../codec/encode-pipeline.js";
import { parseDuration, parseNumber, parseRate, parseSize } from "./units.js";
import { UsageError } from "./usage.js";

type Values = Record<string, string | boolean | string[] | undefined>;

export const SCENARIO_OPTIONS: NonNullable<ParseArgsConfig["options"]> = {
  "guest-size": { type: "string" },
  "dirty-rate": { type: "string" },
  "write-size": { type: "string" },
  content: { type: "string" },
  "fake-dirty": { type: "string" },
  "working-set": { type: "string" },
  latency: { type: "string" },
  jitter: { type: "string" },
  "max-bandwidth": { type: "string" },
  mode: { type: "string" },
  "downtime-limit": { type: "string" },
  "max-rounds": { type: "string" },
  "xbzrle-cache": { type: "string" },
  cpu: { type: "string" },
  "cpu-ns-per-page": { type: "string" },
  warmup: { type: "string" },
  seed: { type: "string" },
  json: { type: "boolean" },
  html: { type: "string" },
  help: { type: "boolean", short: "h" },
};

export const SCENARIO_HELP = `guest:
  --workload NAME        ${listWorkloads()
    .map((w) => w.name)
    .join(", ")}
  --trace NAME|DIR       replay a recording: idle, redis, dirtier (shipped with pagewire) or a 'pagewire record' directory
  --guest-size SIZE      guest RAM for workloads (e.g. 1GiB, 256MiB)
  --dirty-rate N         page writes per second of guest time (workload default otherwise)
  --write-size N         bytes per write, 1..4096
  --content MODEL        ${CONTENT_MODELS.join(", ")}
  --fake-dirty SHARE     share of writes that leave the bytes unchanged, 0..1
  --working-set SHARE    share of RAM the workload writes, 0..1
  --warmup DURATION      guest time run before the migration starts (default 0)
link and engine:
  --latency DURATION     one-way latency (default 0.5ms)
  --jitter DURATION      extra one-way delay per frame, uniform in [0, jitter] (default 0)
  --max-bandwidth RATE   the engine's rate limit (QEMU max-bandwidth; default: the link's)
  --mode MODE            precopy, postcopy, hybrid, stop-and-copy, auto (default precopy)
  --downtime-limit DUR   the downtime the stop rule aims for (default 300ms)
  --max-rounds N         pre-copy rounds before stopping anyway (default 30)
  --xbzrle-cache SIZE    XBZRLE cache size (default 64MiB)
  --cpu MODE             kernel CPU time: model (default, --cpu-ns-per-page, default 400), measure (wall time; not repeatable), none
run:
  --seed N               seed of the workload, jitter and hashes (default 1): a run repeats bit for bit
  --json                 print JSON instead of the table
  --html FILE            also write a self-contained HTML report with charts
presets: ${PRESETS.map((p) => `\n  ${p.name.padEnd(18)} ${p.description}`).join("")}
policies: selection ${listPolicies("selection")
  .map((p) => p.name)
  .join(", ")}
          termination ${listPolicies("termination")
            .map((p) => p.name)
            .join(", ")}
          non-convergence ${listPolicies("non-convergence")
            .map((p) => p.name)
            .join(", ")}, none`;

export interface Guest {
  label: string;
  kind: "workload" | "trace";
  create: (seed: number) => { workload: ScenarioOptions["workload"]; pageCount: number };
}

const recordings = new Map<string, Recording>();

/** A guest by workload name or trace; traces are loaded once per process. */
export function guestFor(v: Values, spec: { workload?: string; trace?: string }, defaultGuestBytes: number): Guest {
  if (spec.trace) {
    const name = spec.trace;
    return {
      label: `trace:${name.split("/").filter(Boolean).pop()}`,
      kind: "trace",
      create: () => {
        let rec = recordings.get(name);
        if (!rec) recordings.set(name, (rec = openRecording(name)));
        return { workload: new TraceWorkload(rec), pageCount: rec.pageCount };
      },
    };
  }
  const name = spec.workload ?? "working-set";
  if (!listWorkloads().some((w) => w.name === name))
    throw new UsageError(
      `--workload: unknown workload '${name}' (${listWorkloads()
        .map((w) => w.name)
        .join(", ")})`,
    );
  const bytes = v["guest-size"] ? parseSize(v["guest-size"] as string, "--guest-size") : defaultGuestBytes;
  const pageCount = Math.floor(bytes / PAGE_SIZE);
  if (pageCount < 16 || pageCount > 2 ** 19)
    throw new UsageError(`--guest-size: want 64KiB..2GiB, got ${v["guest-size"]}`);
  const content = v.content as string | undefined;
  if (content !== undefined && !CONTENT_MODELS.includes(content as ContentModel))
    throw new UsageError(`--content: unknown model '${content}' (${CONTENT_MODELS.join(", ")})`);
  const options = {
    dirtyRate:
      v["dirty-rate"] !== undefined ? parseNumber(v["dirty-rate"] as string, "--dirty-rate", { min: 0 }) : undefined,
    writeSize:
      v["write-size"] !== undefined
        ? parseNumber(v["write-size"] as string, "--write-size", { min: 1, max: PAGE_SIZE, integer: true })
        : undefined,
    content: content as ContentModel | undefined,
    fakeDirtyShare:
      v["fake-dirty"] !== undefined
        ? parseNumber(v["fake-dirty"] as string, "--fake-dirty", { min: 0, max: 1 })
        : undefined,
    workingSetShare:
      v["working-set"] !== undefined
        ? parseNumber(v["working-set"] as string, "--working-set", { min: 0, max: 1 })
        : undefined,
  };
  return {
    label: name,
    kind: "workload",
    create: (seed) => ({ workload: createWorkload(name, { ...options, seed }), pageCount }),
  };
}

export function parseSeed(v: Values): number {
  return v.seed !== undefined
    ? parseNumber(v.seed as string, "--seed", { min: 0, max: 2 ** 32 - 1, integer: true })
    : 1;
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

const MODES = ["precopy", "postcopy", "hybrid", "stop-and-copy", "auto"];

/** Engine and run options (everything but the guest, the bandwidth and the configuration). */
export function runOptions(v: Values): Omit<ScenarioOptions, "workload" | "pageCount" | "bandwidth"> {
  const mode = v.mode as string | undefined;
  if (mode !== undefined && !MODES.includes(mode))
    throw new UsageError(`--mode: unknown mode '${mode}' (${MODES.join(", ")})`);
  const cpu = (v.cpu as string | undefined) ?? "model";
  if (!["model", "measure", "none"].includes(cpu))
    throw new UsageError(`--cpu: want model, measure or none, got '${cpu}'`);
  return {
    seed: parseSeed(v),
    latency: v.latency !== undefined ? parseDuration(v.latency as string, "--latency") : undefined,
    jitter: v.jitter !== undefined ? parseDuration(v.jitter as string, "--jitter") : undefined,
    maxBandwidth:
      v["max-bandwidth"] !== undefined ? parseRate(v["max-bandwidth"] as string, "--max-bandwidth") : undefined,
    mode: mode as ScenarioOptions["mode"],
    downtimeLimitMs:
      v["downtime-limit"] !== undefined
        ? parseDuration(v["downtime-limit"] as string, "--downtime-limit") * 1000
        : undefined,
    maxRounds:
      v["max-rounds"] !== undefined
        ? parseNumber(v["max-rounds"] as string, "--max-rounds", { min: 1, integer: true })
        : undefined,
    warmupSeconds: v.warmup !== undefined ? parseDuration(v.warmup as string, "--warmup") : undefined,
    cpu: cpu as CpuTimeMode,
    cpuNsPerPage:
      v["cpu-ns-per-page"] !== undefined
        ? parseNumber(v["cpu-ns-per-page"] as string, "--cpu-ns-per-page", { min: 0 })
        : undefined,
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
