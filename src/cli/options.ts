// Every command-line flag of every `pagewire` command, defined once: its name, the type of
// its value (read by the one unit parser, src/cli/units.ts), its help and its default. A
// command names the flags it takes (src/cli/command.ts) and may only narrow them: its own
// help line, default or enum values, a comma list; never another type or another name.
import { listPolicies } from "../policy/registry.js";
import { PRESETS } from "../sim/presets.js";
import { CONTENT_MODELS } from "../workload/content.js";
import { listWorkloads } from "../workload/registry.js";

export type FlagType = "size" | "rate" | "duration" | "count" | "number" | "string" | "enum" | "bool";

export interface Flag {
  readonly type: FlagType;
  /** The value's name in help (FILE, HOST:PORT); by type otherwise. */
  readonly arg?: string;
  readonly help: string;
  /** The default as one would type it (parsed like a given value, shown in help). */
  readonly default?: string;
  /** What no value means when there is no default ("unlimited"), for help. */
  readonly absent?: string;
  /** enum: the accepted values (a function: some come from registries). */
  readonly values?: () => readonly string[];
  /** count and number: the accepted range. */
  readonly min?: number;
  readonly max?: number;
}

const policies = (kind: "selection" | "termination" | "non-convergence") => () => listPolicies(kind).map((p) => p.name);

export const MODES = ["precopy", "postcopy", "hybrid", "stop-and-copy", "auto"] as const;

export const FLAGS = {
  // what to migrate, where to
  memory: { type: "string", arg: "FILE", help: "the guest's RAM file (size a multiple of 4096)" },
  to: { type: "string", arg: "HOST:PORT", help: "the receiver" },
  listen: { type: "string", arg: "HOST:PORT", help: "address to listen on (port 0: any free port, printed on stderr)" },
  out: { type: "string", arg: "FILE", help: "where the received memory goes" },
  incoming: { type: "string", arg: "HOST:PORT", help: "where the destination QEMU listens (-incoming)" },
  qmp: { type: "string", arg: "SOCKET", help: "a QEMU QMP unix socket" },
  "source-qmp": { type: "string", arg: "SOCKET", help: "the source QEMU's QMP unix socket" },
  "source-ram": { type: "string", arg: "FILE", help: "the source QEMU's RAM file (its mem-path)" },
  "dest-qmp": { type: "string", arg: "SOCKET", help: "the destination QEMU's QMP unix socket" },
  "dest-ram": { type: "string", arg: "FILE", help: "the destination QEMU's RAM file (its mem-path)" },
  "dest-command": { type: "string", arg: "CMD", help: "a shell command starting the destination QEMU" },
  // pausing the writer (send)
  pid: {
    type: "string",
    arg: "PID",
    help: "SIGSTOP this process at the pause, SIGCONT it on a failure before the decision",
  },
  "pause-cmd": { type: "string", arg: "CMD", help: "a shell command (/bin/sh -c) run at the pause" },
  "resume-cmd": { type: "string", arg: "CMD", help: "a shell command run on a failure after the pause" },
  // security
  key: { type: "string", arg: "FILE", help: "pre-shared key (≥ 16 bytes): HMAC-SHA256 on every frame" },
  "tls-ca": { type: "string", arg: "FILE", help: "connect with TLS, trusting this CA (PEM)" },
  "tls-cert": { type: "string", arg: "FILE", help: "TLS certificate (PEM), with --tls-key" },
  "tls-key": { type: "string", arg: "FILE", help: "TLS private key (PEM), with --tls-cert" },
  "tls-client-ca": { type: "string", arg: "FILE", help: "TLS: require a client certificate signed by this CA (PEM)" },
  insecure: { type: "bool", help: "accept any sender (no --key, no client certificate); warns" },
  force: { type: "bool", help: "replace an existing --out (keeping its mode)" },
  // the migration
  bandwidth: { type: "rate", help: "rate limit of the migration stream", absent: "unlimited" },
  "max-bandwidth": { type: "rate", help: "the engine's rate limit, as QEMU's max-bandwidth", absent: "the link's" },
  "limit-final-round": { type: "bool", help: "keep --bandwidth for the final round (guest paused) too" },
  mode: { type: "enum", arg: "MODE", help: "migration mode", values: () => MODES, default: "precopy" },
  selection: { type: "enum", arg: "NAME", help: "page-selection policy", values: policies("selection") },
  termination: { type: "enum", arg: "NAME", help: "termination policy", values: policies("termination") },
  "non-convergence": {
    type: "enum",
    arg: "NAME",
    help: "non-convergence policy",
    values: () => [...policies("non-convergence")(), "none"],
  },
  "downtime-limit": { type: "duration", help: "the downtime the stop rule aims for", default: "300ms" },
  "max-rounds": { type: "count", help: "pre-copy rounds before stopping anyway", min: 1, absent: "30, hybrid 3" },
  "min-round": {
    type: "duration",
    help: "a round in which the selection policy held pages back lasts until the next dirty-log sync this long after it started (QEMU syncs at least every second)",
    default: "1s",
  },
  "reconnect-window": {
    type: "duration",
    help: "after a lost connection, how long to keep trying to settle the migration",
    default: "30s",
  },
  "handshake-timeout": {
    type: "duration",
    help: "close a connection with no verified HELLO after this long",
    default: "10s",
  },
  "max-pending": {
    type: "count",
    help: "connections that may wait for their handshake at once; more are closed",
    min: 1,
    default: "4",
  },
  "max-memory": { type: "size", help: "refuse a source with more memory", default: "64GiB" },
  "scan-workers": {
    type: "count",
    help: "threads hash-scanning the RAM file each round",
    min: 1,
    max: 64,
    absent: "the cores available, at most 8",
  },
  "qmp-timeout": { type: "duration", help: "per QMP command", default: "10s" },
  channels: {
    type: "count",
    help: "data channels (Workers and connections) besides the control one",
    max: 16,
    min: 0,
    default: "0",
  },
  // simulated guest and link
  preset: {
    type: "enum",
    arg: "NAME",
    help: "engine configuration",
    values: () => PRESETS.map((p) => p.name),
    default: "pagewire",
  },
  codecs: {
    type: "string",
    arg: "LIST",
    help: "codec stages, e.g. zero,xbzrle; or all; or none",
    absent: "the preset's",
  },
  workload: {
    type: "enum",
    arg: "NAME",
    help: "synthetic workload",
    values: () => listWorkloads().map((w) => w.name),
    default: "working-set",
  },
  trace: {
    type: "string",
    arg: "NAME|DIR",
    help: "replay a recording: idle, redis, dirtier (shipped) or a 'pagewire record' directory",
  },
  "guest-size": { type: "size", help: "guest RAM of a synthetic workload, 64KiB..2GiB", default: "1GiB" },
  "dirty-rate": {
    type: "number",
    arg: "PAGES/S",
    help: "page writes per second of guest time",
    min: 0,
    absent: "the workload's",
  },
  "write-size": { type: "count", arg: "BYTES", help: "bytes per write", min: 1, max: 4096, absent: "the workload's" },
  content: {
    type: "enum",
    arg: "MODEL",
    help: "page content model",
    values: () => CONTENT_MODELS,
    absent: "the workload's",
  },
  "fake-dirty": {
    type: "number",
    arg: "SHARE",
    help: "share of writes that leave the bytes unchanged, 0..1 (a trace: share of the dirtied pages rewritten identically, 0..0.99)",
    min: 0,
    max: 1,
    absent: "the workload's",
  },
  "working-set": {
    type: "number",
    arg: "SHARE",
    help: "share of RAM the workload writes, 0..1",
    min: 0,
    max: 1,
    absent: "the workload's",
  },
  warmup: {
    type: "duration",
    help: "guest time run before the migration starts, its dirty log synced every --min-round into the page history (pages not all zero at the start count as modified once: the boot)",
    absent:
      "255 sync periods (255 s) for history-threshold, whose updation counts since the VM started (the count saturates at 255); else 0",
  },
  latency: { type: "duration", help: "one-way latency of the link", default: "0.5ms" },
  jitter: { type: "duration", help: "extra one-way delay per frame, uniform in [0, jitter]", default: "0" },
  "xbzrle-cache": { type: "size", help: "XBZRLE cache size", absent: "the preset's, 64MiB" },
  cpu: {
    type: "enum",
    arg: "MODE",
    help: "kernel CPU time: model (--cpu-ns-per-page per page), measure (wall time, not repeatable) or none",
    values: () => ["model", "measure", "none"],
    default: "model",
  },
  "cpu-ns-per-page": {
    type: "number",
    arg: "NS",
    help: "CPU time charged per page with --cpu model",
    min: 0,
    default: "400",
  },
  seed: {
    type: "count",
    help: "seed of the workload, jitter and hashes: a run repeats bit for bit",
    min: 0,
    max: 2 ** 32 - 1,
    default: "1",
  },
  // record
  interval: { type: "duration", help: "time between two snapshots" },
  count: { type: "count", help: "snapshots after the first", min: 1 },
  // resolve
  commit: { type: "bool", help: "the sender committed: FILE.in-doubt becomes FILE" },
  abort: { type: "bool", help: "the sender resumed its guest: FILE.in-doubt is removed" },
  // bench
  quick: { type: "bool", help: "short measurements (results in <suite>.quick.tmp.json)" },
  list: { type: "bool", help: "list the suites" },
  // output
  json: { type: "bool", help: "print the result as JSON" },
  html: { type: "string", arg: "FILE", help: "also write a self-contained HTML report with charts" },
  progress: {
    type: "enum",
    arg: "HOW",
    help: "progress while running: auto (a line on a terminal), json (JSON lines on stderr) or off",
    values: () => ["auto", "json", "off"],
    default: "auto",
  },
} as const satisfies Record<string, Flag>;

export type FlagName = keyof typeof FLAGS;

/**
 * Flags that were renamed: each command refuses them with the new name (a script written for
 * the old spelling would otherwise read a bare number in another unit, or be silently ignored).
 */
export const RENAMED: Readonly<Record<string, string>> = {
  downtime: "--downtime-limit, with a unit (e.g. --downtime-limit 300ms)",
  policy: "--selection",
  presets: "--preset (compare takes a comma list)",
  workloads: "--workload (compare takes a comma list)",
  traces: "--trace (compare takes a comma list)",
  bandwidths: "--bandwidth (compare takes a comma list)",
};
