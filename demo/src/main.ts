// The demo page: controls → DemoMigration (migration.ts) → memory map, round bars, dirty
// curve, live query-migrate fields and the digest check, redrawn every animation frame.
import { CODECS, emptyCounts, selectCodecs, SWITCHABLE_CODECS } from "../../src/codec/codecs.js";
import { listPolicies } from "../../src/policy/registry.js";
import type { MigrationReport, RoundRow } from "../../src/engine/report.js";
import type { MigrationMode } from "../../src/engine/source.js";
import { GUEST_WORKLOADS } from "./guest-workload.js";
import { DemoMigration, PAGE_STATE_NAMES, type DemoConfig, type DemoResult } from "./migration.js";
import { drawBars, drawCurve, drawMap, STATE_COLORS } from "./draw.js";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const MODES: MigrationMode[] = ["precopy", "postcopy", "hybrid", "stop-and-copy", "auto"];
const RECORDINGS = new URL(`${import.meta.env.BASE_URL}recordings/`, location.href);
const isolated = globalThis.crossOriginIsolated === true && typeof SharedArrayBuffer !== "undefined";
const forceMainThread = new URLSearchParams(location.search).has("main-thread");
const useWorker = isolated && !forceMainThread;

let recording: ArrayBuffer | null = null;
let current: DemoMigration | null = null;

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
  for (const p of listPolicies("non-convergence")) option($("nonconvergence"), p.name, p.name, p.name === "force-stop");
  for (const name of SWITCHABLE_CODECS) {
    const label = document.createElement("label");
    label.innerHTML = `<input type="checkbox" id="codec-${name}" checked /> ${name}`;
    $("codecs").append(label);
  }
  const legend = $("legend");
  PAGE_STATE_NAMES.forEach((name, i) => {
    const li = document.createElement("li");
    li.innerHTML = `<i style="background:${STATE_COLORS[i]}"></i>${name}`;
    legend.append(li);
  });
  workload.addEventListener("change", () => {
    const rec = workload.value === "recording";
    $<HTMLSelectElement>("size").disabled = rec;
    $<HTMLInputElement>("rate").disabled = rec;
  });
  $("start").addEventListener("click", () => void start());
  $("stop").addEventListener("click", () => current?.stop());
  document.body.dataset.ready = "true";
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
  };
}

function setStatus(status: string, text = status): void {
  const s = $("status");
  s.dataset.status = status;
  s.textContent = text;
  document.body.dataset.status = status;
}

async function start(): Promise<void> {
  if (current) return;
  const config = readConfig();
  const m = (current = new DemoMigration(config));
  $<HTMLButtonElement>("start").disabled = true;
  $<HTMLButtonElement>("stop").disabled = false;
  const digest = $("digest");
  digest.textContent = "";
  delete digest.dataset.verified;
  setStatus("running", "starting");
  let frame = 0;
  const redraw = () => {
    render(m, config, true);
    frame = requestAnimationFrame(redraw);
  };
  frame = requestAnimationFrame(redraw);
  try {
    const result = await m.run((stage) => setStatus("running", stage));
    cancelAnimationFrame(frame);
    render(m, config);
    showResult(result);
    setStatus(
      "completed",
      `completed: ${config.mode === "auto" ? `auto → ${result.report.mode}` : config.mode} · guest in ${result.where === "worker" ? "a Web Worker" : "the main thread"}`,
    );
  } catch (err) {
    cancelAnimationFrame(frame);
    render(m, config);
    const e = err as { code?: string; message?: string };
    const aborted = e.code === "MIGRATION_ABORTED";
    setStatus(aborted ? "aborted" : "failed", `${aborted ? "aborted" : "failed"}: ${e.message ?? String(err)}`);
    // a stop is a user action, not an error of the page
    if (!aborted) console.error(err);
  } finally {
    current = null;
    $<HTMLButtonElement>("start").disabled = false;
    $<HTMLButtonElement>("stop").disabled = true;
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
    ["ram.transferred", fmtBytes(r.ram.transferred)],
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
  const map = $<HTMLCanvasElement>("map");
  const group = drawMap(map, m.pageStates);
  $("map-scale").textContent =
    `${config.pages} pages${group > 1 ? `, ${group} pages per cell` : ", one cell per page"}`;
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
  }
}

void setup().catch((err) => {
  setStatus("failed", `failed: ${(err as Error).message}`);
  console.error(err);
});
