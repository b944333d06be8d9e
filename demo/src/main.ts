// The demo page: controls → DemoMigration (migration.ts) → the stage texts and the phase
// timeline, live totals, source and destination memory maps, round bars, dirty curve,
// query-migrate fields and the digest check, redrawn every animation frame; step mode;
// the modes side by side (compare.ts).
//
// Every control can be preset from the URL by its id (?size=1024&bandwidth=32&step-mode=1):
// the Chromium test runs fast settings that way while the page's defaults make a run a
// person can watch.
import { CODECS, emptyCounts, selectCodecs, SWITCHABLE_CODECS } from "../../src/codec/codecs.js";
import { listPolicies } from "../../src/policy/registry.js";
import type { MigrationReport, RoundRow } from "../../src/engine/report.js";
import type { MigrationMode } from "../../src/engine/source.js";
import { GUEST_WORKLOADS } from "./guest-workload.js";
import { DemoMigration, type DemoConfig, type DemoResult } from "./migration.js";
import { drawBars, drawCurve, drawMap } from "./draw.js";
import { countStates, DEST_STYLES, SOURCE_STYLES, SourceState, type StateStyle } from "./page-states.js";
import { STAGE_CARDS, stageDetail, type RunMode } from "./stage-texts.js";
import { drawTimeline, phaseLabel } from "./timeline.js";
import { COMPARED_MODES, comparisonRow, failedRow, renderComparison, type ComparisonRow } from "./compare.js";
import { renderAutoInputs } from "./auto-inputs.js";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const MODES: MigrationMode[] = ["precopy", "postcopy", "hybrid", "stop-and-copy", "auto"];
const RECORDINGS = new URL(`${import.meta.env.BASE_URL}recordings/`, location.href);
const isolated = globalThis.crossOriginIsolated === true && typeof SharedArrayBuffer !== "undefined";
const forceMainThread = new URLSearchParams(location.search).has("main-thread");
const useWorker = isolated && !forceMainThread;

/** Milliseconds between two redraws while a migration runs. */
const RENDER_INTERVAL_MS = 100;

let recording: ArrayBuffer | null = null;
let current: DemoMigration | null = null;
/** A comparison in progress: Stop ends it too. */
let comparing = false;

function option(select: HTMLSelectElement, value: string, label = value, selected = false): void {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = label;
  o.selected = selected;
  select.append(o);
}

async function loadRecording(): Promise<ArrayBuffer | null> {
  try {
    // written by demo/prepare-recording.ts, empty when ../shared/datasets was missing
    const list = await fetch(new URL("manifest.json", RECORDINGS));
    if (!list.ok) return null;
    const { recordings } = (await list.json()) as { recordings: Array<{ name: string; file: string }> };
    if (!recordings.length) return null;
    const res = await fetch(new URL(recordings[0].file, RECORDINGS));
    if (!res.ok) return null;
    let bytes = new Uint8Array(await res.arrayBuffer());
    if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
      const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      bytes = new Uint8Array(await new Response(stream).arrayBuffer());
    }
    return bytes.buffer;
  } catch {
    return null;
  }
}

async function setup(): Promise<void> {
  $("env").textContent = useWorker
    ? "cross-origin isolated: the guest runs in a Web Worker on shared WebAssembly memory"
    : `${isolated ? "main-thread mode requested" : "not cross-origin isolated"}: the guest runs on the page's own timers (no shared memory)`;
  document.body.dataset.guest = useWorker ? "worker" : "main-thread";
  const workload = $<HTMLSelectElement>("workload");
  recording = await loadRecording();
  for (const w of GUEST_WORKLOADS) {
    if (w === "recording" && !recording) continue;
    option(workload, w, w === "recording" ? "recording: redis (real guest, 2 MiB window)" : w, w === "working-set");
  }
  for (const m of MODES) option($("mode"), m, m, m === "precopy");
  for (const p of listPolicies("selection")) option($("selection"), p.name, p.name, p.name === "vanilla");
  for (const p of listPolicies("termination")) option($("termination"), p.name, p.name, p.name === "qemu");
  option($("nonconvergence"), "none", "none (QEMU's default)", true);
  for (const p of listPolicies("non-convergence")) option($("nonconvergence"), p.name);
  for (const name of SWITCHABLE_CODECS) {
    const label = document.createElement("label");
    label.innerHTML = `<input type="checkbox" id="codec-${name}" checked /> ${name}`;
    $("codecs").append(label);
  }
  legend($("legend"), SOURCE_STYLES, "sent this round as:");
  legend($("dest-legend"), DEST_STYLES, "received this round as:");
  $("stage-cards").replaceChildren(
    ...STAGE_CARDS.map((card) => {
      const li = document.createElement("li");
      li.dataset.stage = card.kind;
      li.innerHTML = `<b>${card.title}</b><p></p>`;
      return li;
    }),
  );
  renderCards(null, $<HTMLSelectElement>("mode").value as RunMode);
  workload.addEventListener("change", () => {
    const rec = workload.value === "recording";
    $<HTMLSelectElement>("size").disabled = rec;
    $<HTMLInputElement>("rate").disabled = rec;
  });
  presetFromUrl();
  workload.dispatchEvent(new Event("change"));
  $("mode").addEventListener("change", () => renderCards(null, $<HTMLSelectElement>("mode").value as RunMode));
  renderCards(null, $<HTMLSelectElement>("mode").value as RunMode);
  $("start").addEventListener("click", () => void start());
  $("step").addEventListener("click", () => current?.advance());
  $("stop").addEventListener("click", () => {
    comparing = false;
    current?.stop();
  });
  $("compare").addEventListener("click", () => void compare());
  document.body.dataset.ready = "true";
}

function legend(ul: HTMLElement, styles: readonly StateStyle[], codecsAs: string): void {
  ul.replaceChildren(
    ...styles.flatMap((s, i) => {
      const li = document.createElement("li");
      li.innerHTML = `<i style="background:${s.color}"></i>${s.name}`;
      if (!s.codec || styles[i - 1]?.codec) return [li];
      const heading = document.createElement("li");
      heading.className = "heading";
      heading.textContent = codecsAs;
      return [heading, li];
    }),
  );
}

/** Sets controls from the URL's query, by id (selects only to a value they offer). */
function presetFromUrl(): void {
  for (const [id, value] of new URLSearchParams(location.search)) {
    const el = document.getElementById(id);
    if (el instanceof HTMLSelectElement) {
      if ([...el.options].some((o) => o.value === value)) el.value = value;
    } else if (el instanceof HTMLInputElement) {
      if (el.type === "checkbox") el.checked = value !== "0" && value !== "false";
      else el.value = value;
    }
  }
}

function readConfig(): DemoConfig {
  const workload = $<HTMLSelectElement>("workload").value;
  const rec = workload === "recording";
  const pages = rec ? new DataView(recording!).getUint32(4, true) : Number($<HTMLSelectElement>("size").value);
  const checked = (id: string) => $<HTMLInputElement>(`codec-${id}`).checked;
  const guestBytes = pages * 4096;
  return {
    workload,
    workloadOptions: {
      pagesPerSecond: Number($<HTMLInputElement>("rate").value),
      seed: 7,
      recording: rec ? recording! : undefined,
    },
    pages,
    bandwidth: Number($<HTMLInputElement>("bandwidth").value) * 2 ** 20,
    mode: $<HTMLSelectElement>("mode").value as MigrationMode,
    selection: $<HTMLSelectElement>("selection").value,
    termination: $<HTMLSelectElement>("termination").value,
    nonConvergence: $<HTMLSelectElement>("nonconvergence").value,
    codecs: {
      ...selectCodecs(SWITCHABLE_CODECS.filter(checked)),
      // QEMU's 64 MiB default, or the guest size rounded up to a power of two if smaller
      xbzrleCacheBytes: Math.min(64 << 20, 2 ** Math.ceil(Math.log2(guestBytes))),
    },
    downtimeLimitMs: Number($<HTMLInputElement>("downtime").value),
    worker: useWorker,
    step: $<HTMLInputElement>("step-mode").checked,
  };
}

function setStatus(status: string, text = status): void {
  const s = $("status");
  s.dataset.status = status;
  s.textContent = text;
  document.body.dataset.status = status;
}

function setBusy(busy: boolean): void {
  $<HTMLButtonElement>("start").disabled = busy;
  $<HTMLButtonElement>("compare").disabled = busy;
  $<HTMLButtonElement>("stop").disabled = !busy;
  if (!busy) $<HTMLButtonElement>("step").disabled = true;
}

/** Step mode's hold changed: the Next button and the page's data-hold follow it. */
function holdChanged(m: DemoMigration): void {
  const held = m.stepper?.held ?? null;
  const step = $<HTMLButtonElement>("step");
  step.disabled = held === null;
  step.textContent = held === "pause" ? "Next: pause" : "Next round";
  document.body.dataset.hold = held ?? "";
  // holds so far: a watcher tells a new hold from the same one (the run between two may be brief)
  if (held) document.body.dataset.holds = String(Number(document.body.dataset.holds ?? 0) + 1);
  render(m, m.config, true);
}

/** Runs one migration with the page showing it; resolves with its result, or null when it failed or was stopped. */
async function runOne(config: DemoConfig, label: string): Promise<DemoResult | null> {
  const m: DemoMigration = new DemoMigration(config, () => holdChanged(m));
  current = m;
  lastDecisions = -1;
  const digest = $("digest");
  digest.textContent = "";
  delete digest.dataset.verified;
  $("timeline").replaceChildren();
  setStatus("running", `${label}: starting`);
  // ten frames a second are enough to watch, and leave the main thread (where both engines
  // run) to the migration: post-copy's push yields to the event loop after every chunk
  let frame = 0;
  let drawn = 0;
  const redraw = (now: number) => {
    if (now - drawn >= RENDER_INTERVAL_MS) {
      drawn = now;
      render(m, config, true);
    }
    frame = requestAnimationFrame(redraw);
  };
  frame = requestAnimationFrame(redraw);
  try {
    const result = await m.run((stage) => setStatus("running", `${label}: ${stage}`));
    cancelAnimationFrame(frame);
    render(m, config);
    showResult(result);
    setStatus(
      "completed",
      `completed: ${config.mode === "auto" ? `auto → ${result.report.mode}` : config.mode} · guest in ${result.where === "worker" ? "a Web Worker" : "the main thread"}`,
    );
    return result;
  } catch (err) {
    cancelAnimationFrame(frame);
    render(m, config);
    const e = err as { code?: string; message?: string };
    const aborted = e.code === "MIGRATION_ABORTED" || m.stopped;
    setStatus(aborted ? "aborted" : "failed", `${aborted ? "aborted" : "failed"}: ${e.message ?? String(err)}`);
    // a stop is a user action, not an error of the page
    if (!aborted) console.error(err);
    return null;
  } finally {
    current = null;
    document.body.dataset.hold = "";
  }
}

async function start(): Promise<void> {
  if (current) return;
  setBusy(true);
  try {
    await runOne(readConfig(), "migration");
  } finally {
    setBusy(false);
  }
}

/** Every mode on the same guest, one after the other; the table fills as each run ends. */
async function compare(): Promise<void> {
  if (current) return;
  setBusy(true);
  comparing = true;
  document.body.dataset.compare = "running";
  const base = readConfig();
  const rows: ComparisonRow[] = [];
  const table = $<HTMLTableElement>("compare-table");
  try {
    for (const mode of COMPARED_MODES) {
      if (!comparing) break;
      renderComparison(table, rows, mode);
      const result = await runOne(
        { ...base, mode, step: false },
        `compare ${rows.length + 1}/${COMPARED_MODES.length}`,
      );
      rows.push(result ? comparisonRow(mode, result) : failedRow(mode, $("status").textContent ?? "failed"));
      renderComparison(table, rows, null);
    }
  } finally {
    comparing = false;
    setBusy(false);
    document.body.dataset.compare = rows.length === COMPARED_MODES.length ? "done" : "stopped";
  }
}

function showResult(r: DemoResult): void {
  const d = $("digest");
  const ok = r.destination.committed && r.identical;
  d.dataset.verified = String(ok);
  d.dataset.digest = r.destination.digest;
  d.textContent = ok
    ? `✔ digest verified: ${r.destination.digest} (source = destination, ${r.report.ram.total / 2 ** 20} MiB identical)`
    : `✘ digest ${r.destination.digest}: memories differ`;
}

const fmtMs = (x: number) => `${x.toFixed(1)} ms`;
const fmtBytes = (x: number) => `${x} (${(x / 2 ** 20).toFixed(2)} MiB)`;

function reportFields(r: MigrationReport, running: boolean): Array<[string, string]> {
  // while it runs, QEMU's query-migrate says "active" ("postcopy-active" after the switch)
  const postcopyRunning = (r.mode === "postcopy" || r.mode === "hybrid") && r.downtime > 0;
  const rows: Array<[string, string]> = [
    ["status", running ? (postcopyRunning ? "postcopy-active" : "active") : r.status],
    ["mode", r.mode],
    ["total-time", fmtMs(r.totalTime)],
    ["downtime", fmtMs(r.downtime)],
    ["setup-time", fmtMs(r.setupTime)],
    ["expected-downtime", fmtMs(r.expectedDowntime)],
    ["ram.transferred", fmtBytes(r.ram.transferred)],
    ["ram.remaining", fmtBytes(r.ram.remaining)],
    ["ram.total", fmtBytes(r.ram.total)],
    ...CODECS.map((c): [string, string] => [`ram.${c.counter}`, String(r.ram[c.counter])]),
    ["ram.normal-bytes", String(r.ram["normal-bytes"])],
    ["ram.pages-sent", String(r.ram["pages-sent"])],
    ["ram.dirty-sync-count", String(r.ram["dirty-sync-count"])],
    ["ram.mbps", r.ram.mbps.toFixed(1)],
    ["ram.dirty-pages-rate", String(Math.round(r.ram["dirty-pages-rate"]))],
  ];
  for (const [k, v] of Object.entries(r["xbzrle-cache"]))
    rows.push([`xbzrle-cache.${k}`, Number.isInteger(v) ? String(v) : v.toFixed(3)]);
  rows.push(["postcopy-requests", String(r["postcopy-requests"])]);
  return rows;
}

/** The round on the wire: the live counters minus the finished rounds. */
function inProgressRound(r: MigrationReport): RoundRow {
  const counts = emptyCounts();
  for (const c of CODECS) counts[c.count] = r.ram[c.counter] - r.rounds.reduce((s, row) => s + row[c.count], 0);
  return {
    round: r.rounds.length,
    phase: "current",
    dirtied: 0,
    deferred: 0,
    sent: 0,
    ...counts,
    bytes: 0,
    seconds: 0,
  };
}

let lastDecisions = -1;
function render(m: DemoMigration, config: DemoConfig, running = false): void {
  m.settle();
  if (running) m.peekLive();
  const group = drawMap($<HTMLCanvasElement>("map"), m.sourceStates, SOURCE_STYLES);
  drawMap($<HTMLCanvasElement>("dest-map"), m.destStates, DEST_STYLES);
  $("map-scale").textContent =
    `${config.pages} pages${group > 1 ? `, ${group} pages per cell` : ", one cell per page"}`;
  renderStage(m, config);
  renderLive(m);
  const r = m.report;
  if (!r) return;
  drawBars($<HTMLCanvasElement>("bars"), running ? [...r.rounds, inProgressRound(r)] : r.rounds);
  drawCurve($<HTMLCanvasElement>("curve"), r.rounds, config.bandwidth, config.downtimeLimitMs);
  const table = $<HTMLTableElement>("report");
  table.replaceChildren(
    ...reportFields(r, running).map(([k, v]) => {
      const tr = document.createElement("tr");
      tr.dataset.field = k;
      tr.innerHTML = `<td>${k}</td><td>${v}</td>`;
      return tr;
    }),
  );
  if (r.decisions.length !== lastDecisions) {
    lastDecisions = r.decisions.length;
    $("decisions").replaceChildren(
      ...r.decisions.map((d) => {
        const li = document.createElement("li");
        li.textContent = `round ${d.round} ${d.kind}: ${d.decision}`;
        return li;
      }),
    );
    renderAutoInputs($("auto-inputs"), r.decisions, config.downtimeLimitMs);
  }
}

/** The mode the run uses: auto's choice once made. */
function runMode(m: DemoMigration): RunMode {
  const chosen = m.report?.mode;
  return (chosen && chosen !== "auto" ? chosen : m.config.mode) as RunMode;
}

/** The stage cards: the current one active, the ones passed done, the ones this mode skips dimmed. */
function renderCards(m: DemoMigration | null, mode: RunMode): void {
  const spans = m?.phases.spans ?? [];
  const now = m?.phases.current;
  const finished = m?.phases.outcome === "done";
  for (const li of $("stage-cards").children as HTMLCollectionOf<HTMLElement>) {
    const card = STAGE_CARDS.find((c) => c.kind === li.dataset.stage)!;
    const seen = spans.some((s) => s.kind === card.kind);
    // a stage the run went through counts even if the mode chosen later skips it (auto's probe)
    li.dataset.state =
      now?.kind === card.kind && !finished ? "active" : seen ? "done" : card.used(mode) ? "pending" : "unused";
    li.children[1].textContent = card.text(mode);
  }
}

function renderStage(m: DemoMigration, config: DemoConfig): void {
  const mode = runMode(m);
  const span = m.phases.current;
  const held = m.stepper?.held ?? null;
  const outcome = m.phases.outcome;
  const stage = $("stage");
  const decisions = m.report?.decisions.filter((d) => d.kind === "termination" || d.kind === "non-convergence");
  stage.dataset.phase = held ? `held-${held}` : outcome !== "running" ? outcome : (span?.kind ?? "idle");
  $("stage-title").textContent =
    outcome === "done"
      ? `Done: the guest runs at the destination (${mode})`
      : outcome === "aborted"
        ? "Stopped: the source keeps the guest"
        : held
          ? `Step mode: held ${held === "round" ? `after round ${span?.round ?? 0}` : "before the pause"}`
          : span
            ? `${phaseLabel(span)[0].toUpperCase()}${phaseLabel(span).slice(1)} · ${mode}`
            : "Starting";
  $("stage-text").textContent =
    outcome === "done"
      ? `Total ${(m.phases.elapsedMs / 1000).toFixed(2)} s; the guest was stopped ${m.report?.downtime.toFixed(0)} ms. Hover a timeline segment for its duration.`
      : outcome === "aborted"
        ? "The migration ended before the commit: the destination discards what it received and the guest goes on running at the source."
        : stageDetail(span, {
            mode,
            pages: config.pages,
            pending: countStates(m.sourceStates, SourceState.DIRTY, SourceState.DEFERRED, SourceState.UNSENT),
            missing: m.destination?.missingPages ?? 0,
            faults: m.faults,
            held,
            lastDecision: decisions?.at(-1)?.decision ?? null,
          });
  renderCards(m, mode);
  drawTimeline($("timeline"), m.phases, held !== null);
}

const mib = (x: number) => `${(x / 2 ** 20).toFixed(2)} MiB`;

/** Live totals: what has moved so far, at what rate, and what stopping now would cost. */
function renderLive(m: DemoMigration): void {
  const s = m.snapshot();
  const fields: Array<[string, string, string]> = [
    ["elapsed", "elapsed", `${(s.elapsedMs / 1000).toFixed(1)} s`],
    ["round", "round", String(s.round)],
    ["transferred", "sent", mib(s.transferred)],
    ["pages", "pages sent", String(s.pagesSent)],
    ["rate", "rate now", `${mib(s.rate)}/s · ${((s.rate * 8) / 1e6).toFixed(1)} Mbit/s`],
    ["mbps", "average", `${s.mbps.toFixed(1)} Mbit/s`],
    ["remaining", "remaining", mib(s.remaining)],
    [
      "expected-downtime",
      "expected downtime",
      s.expectedDowntimeMs > 0 ? `${s.expectedDowntimeMs.toFixed(0)} ms` : "–",
    ],
    ["dirty-rate", "dirty rate", `${s.dirtyRateEstimated ? "~" : ""}${Math.round(s.dirtyRate)} pages/s`],
    ["faults", "post-copy faults", String(m.faults)],
  ];
  const dl = $("live");
  if (dl.children.length !== fields.length * 2)
    dl.replaceChildren(
      ...fields.flatMap(([key, title]) => {
        const dt = document.createElement("dt");
        dt.textContent = title;
        const dd = document.createElement("dd");
        dd.dataset.field = key;
        return [dt, dd];
      }),
    );
  fields.forEach(([, , value], i) => {
    const dd = dl.children[i * 2 + 1] as HTMLElement;
    dd.textContent = value;
  });
  dl.dataset.transferred = String(s.transferred);
  dl.dataset.pages = String(s.pagesSent);
}

void setup().catch((err) => {
  setStatus("failed", `failed: ${(err as Error).message}`);
  console.error(err);
});
