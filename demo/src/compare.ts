// The modes side by side: the same guest (workload, seed, size, dirty rate) migrated once
// per mode at the same bandwidth, one after the other so that the runs do not share the
// CPU, and a small table of what each cost.
import type { MigrationMode } from "../../src/engine/source.js";
import type { DemoResult } from "./migration.js";

export const COMPARED_MODES: MigrationMode[] = ["precopy", "postcopy", "hybrid", "stop-and-copy"];

export interface ComparisonRow {
  mode: string;
  totalMs: number;
  downtimeMs: number;
  transferred: number;
  pagesSent: number;
  /** Pre-copy rounds before the pause. */
  rounds: number;
  faults: number;
  verified: boolean;
  /** Set when the run failed or was stopped. */
  error?: string;
}

export function comparisonRow(mode: string, r: DemoResult): ComparisonRow {
  return {
    mode,
    totalMs: r.report.totalTime,
    downtimeMs: r.report.downtime,
    transferred: r.report.ram.transferred,
    pagesSent: r.report.ram["pages-sent"],
    rounds: r.report.rounds.filter((x) => x.phase === "precopy").length,
    faults: r.faults,
    verified: r.destination.committed && r.identical,
  };
}

const COLUMNS: Array<[string, string, (r: ComparisonRow) => number | null, (v: number) => string]> = [
  ["total", "total time", (r) => r.totalMs, (v) => `${(v / 1000).toFixed(2)} s`],
  ["downtime", "downtime (guest stopped)", (r) => r.downtimeMs, (v) => `${v.toFixed(0)} ms`],
  ["transferred", "bytes sent", (r) => r.transferred, (v) => `${(v / 2 ** 20).toFixed(2)} MiB`],
  ["pages", "pages sent", (r) => r.pagesSent, (v) => String(v)],
  ["rounds", "pre-copy rounds", (r) => r.rounds, (v) => String(v)],
  ["faults", "post-copy faults", (r) => r.faults, (v) => String(v)],
];

/** The table: a row per mode run so far, the lowest value of each column marked. */
export function renderComparison(table: HTMLTableElement, rows: ComparisonRow[], running: string | null): void {
  const head = `<tr><th>mode</th>${COLUMNS.map(([, title]) => `<th>${title}</th>`).join("")}<th>digest</th></tr>`;
  const ok = rows.filter((r) => !r.error);
  const best = COLUMNS.map(([, , get]) => Math.min(...ok.map((r) => get(r) ?? Infinity)));
  const body = rows.map((r) => {
    if (r.error)
      return `<tr data-mode="${r.mode}" data-error="true"><td>${r.mode}</td><td colspan="${COLUMNS.length + 1}">${r.error}</td></tr>`;
    const cells = COLUMNS.map(([key, , get, fmt], i) => {
      const v = get(r)!;
      return `<td data-col="${key}" data-value="${v}"${ok.length > 1 && v === best[i] ? ' class="best"' : ""}>${fmt(v)}</td>`;
    });
    return `<tr data-mode="${r.mode}"><td>${r.mode}</td>${cells.join("")}<td>${r.verified ? "✔ verified" : "✘ differs"}</td></tr>`;
  });
  const pending = COMPARED_MODES.slice(rows.length).map(
    (m) =>
      `<tr data-mode="${m}" data-pending="true"><td>${m}</td><td colspan="${COLUMNS.length + 1}">${m === running ? "running…" : "waiting"}</td></tr>`,
  );
  table.innerHTML = head + body.join("") + (running || rows.length ? pending.join("") : "");
}

/** The row of a run that failed or was stopped (the table shows the error instead of figures). */
export function failedRow(mode: string, error: string): ComparisonRow {
  return {
    mode,
    totalMs: 0,
    downtimeMs: 0,
    transferred: 0,
    pagesSent: 0,
    rounds: 0,
    faults: 0,
    verified: false,
    error,
  };
}
