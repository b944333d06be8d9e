// The text form of a MigrationReport: a QEMU-style summary with units, the per-round table
// aligned with units under its head, and the policy decisions in words.
import { CODECS } from "../codec/codecs.js";
import { bytesText, fixed, rateText, short, textTable, type TextColumn } from "../util/text-table.js";
import type { MigrationReport, PolicyDecision, RoundRow } from "./report.js";
import { ROUND_COLUMNS } from "./report.js";

/** Units of the round table's columns (the heads are the JSON names). */
const ROUND_UNITS: Partial<Record<keyof RoundRow, string>> = { bytes: "MiB", seconds: "s" };

export function reportText(r: MigrationReport): string {
  const rows: Array<[string, string]> = [];
  const kv = (k: string, v: string) => rows.push([k, v]);
  kv("status", r.status + (r.error ? ` (${r.error.code}: ${humanize(r.error.message)})` : ""));
  kv("mode", r.mode);
  if (r.stoppedBy) kv("stopped-by", r.stoppedBy);
  kv("total-time", `${fixed(r.totalTime, 1)} ms`);
  kv("downtime", `${fixed(r.downtime, 1)} ms`);
  kv("setup-time", `${fixed(r.setupTime, 1)} ms`);
  kv("transferred", `${bytesText(r.ram.transferred)} (${r.ram.transferred} bytes)`);
  kv("total", `${bytesText(r.ram.total)} (${r.ram.total} bytes)`);
  // a QEMU name that does not say the codec gets it in brackets: "duplicate (zero)"
  for (const c of CODECS)
    kv(c.counter.includes(c.name) ? c.counter : `${c.counter} (${c.name})`, `${r.ram[c.counter]} pages`);
  kv("dirty-sync-count", String(r.ram["dirty-sync-count"]));
  kv("mbps", `${fixed(r.ram.mbps, 1)} Mbit/s`);
  kv("dirty-pages-rate", `${Math.round(r.ram["dirty-pages-rate"])} pages/s`);
  for (const [k, v] of Object.entries(r["xbzrle-cache"])) kv(`xbzrle-cache.${k}`, counterText(k, v));
  for (const [k, v] of Object.entries(r.dedup ?? {})) kv(`dedup.${k}`, counterText(k, v));
  if (r.postcopy) {
    kv("postcopy-requests", String(r["postcopy-requests"]));
    for (const [k, v] of Object.entries(r.postcopy)) kv(`postcopy.${k}`, counterText(k, v));
  }
  if (r.recovery.count)
    kv("recovery", `${r.recovery.count} reconnection(s), ${fixed(r.recovery["paused-ms"], 1)} ms without a connection`);
  const keyWidth = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `${k.padEnd(keyWidth)}  ${v}`);
  lines.push("");
  const columns: TextColumn[] = ROUND_COLUMNS.map((c) => ({
    head: c,
    unit: ROUND_UNITS[c] ?? (c === "round" || c === "phase" ? "" : "pages"),
    align: c === "phase" ? "left" : "right",
  }));
  lines.push(...textTable(columns, r.rounds.map(roundCells)));
  for (const d of r.decisions) lines.push(describeDecision(d, r.pageSize));
  return lines.join("\n");
}

function roundCells(row: RoundRow): string[] {
  return ROUND_COLUMNS.map((c) =>
    c === "bytes" ? fixed(row.bytes / 2 ** 20, 3) : c === "seconds" ? fixed(row.seconds, 3) : String(row[c]),
  );
}

/** A counter with the unit its name says: sizes as bytes, "-ms" as milliseconds, rates rounded. */
function counterText(name: string, v: number): string {
  if (!Number.isFinite(v)) return "none measured";
  if (/(^|-)(bytes|size)$|Bytes|bytesSaved/.test(name)) return `${bytesText(v)}${v >= 1024 ? ` (${v} bytes)` : ""}`;
  if (/-ms$|Ms$/.test(name)) return `${short(v)} ms`;
  return short(v);
}

/**
 * One decision as a sentence: "round 7  termination: stop (qemu rule) — expected downtime
 * 212 ms ≤ limit 300 ms …", numbers rounded and with units, no JSON.
 */
export function describeDecision(d: PolicyDecision, pageSize: number): string {
  const head = `round ${d.round}  ${d.kind}`;
  const [policy, ...rest] = d.decision.split(": ");
  const detail = humanize(rest.length ? rest.join(": ") : d.decision);
  const inputs = d.inputs ?? {};
  if (d.kind === "policies") {
    const [selection, termination, nonConvergence] = d.decision.split(" / ");
    return `${head}: selection ${selection}, termination ${termination ?? "?"}, non-convergence ${nonConvergence ?? "none"}`;
  }
  if (d.kind === "termination" || d.kind === "non-convergence") {
    const verb = d.stoppedBy
      ? `stop (${d.stoppedBy})`
      : d.kind === "non-convergence" && rest.length
        ? detail
        : "continue";
    const why = rest.length ? `${policy}: ${detail}` : detail;
    const expected = expectedDowntimeText(inputs, pageSize);
    return `${head}: ${verb}${expected ? ` — ${expected}` : ""}${verb === detail ? "" : `; ${why}`}`;
  }
  const measured = Object.entries(inputs).map(([k, v]) => inputText(k, v));
  return `${head}: ${humanize(d.decision)}${measured.length ? ` (${measured.join(", ")})` : ""}`;
}

/** QEMU's expected downtime at the decision: pending bytes over the bandwidth estimate, against the limit. */
function expectedDowntimeText(inputs: NonNullable<PolicyDecision["inputs"]>, pageSize: number): string {
  const pending = inputs.pendingPages;
  const bandwidth = inputs.bandwidthBytesPerSecond;
  const limit = inputs.downtimeLimitMs;
  if (typeof pending !== "number" || typeof bandwidth !== "number") return "";
  const bytes = pending * pageSize;
  const what = `${pending} pages (${bytesText(bytes)}) pending`;
  if (!(bandwidth > 0)) return `expected downtime unknown (no bandwidth estimate yet), ${what}`;
  const ms = (bytes / bandwidth) * 1000;
  const vs = typeof limit === "number" ? ` ${ms <= limit ? "≤" : ">"} limit ${short(limit)} ms` : "";
  return `expected downtime ${short(ms)} ms${vs}: ${what} at ${rateText(bandwidth)}`;
}

/** A measured input in words, its unit taken from its name. */
function inputText(name: string, v: number | string | boolean): string {
  const words = name.replace(/([A-Z])/g, " $1").toLowerCase();
  if (typeof v !== "number") return `${words} ${v}`;
  if (name.endsWith("BytesPerSecond")) return `${words.replace(/ bytes per second$/, "")} ${rateText(v)}`;
  if (name.endsWith("PerSecond")) return `${words.replace(/ per second$/, "")} ${short(v)}/s`;
  if (name.endsWith("Share")) return `${words} ${short(v * 100)} %`;
  if (name.endsWith("Ms")) return `${words.replace(/ ms$/, "")} ${short(v)} ms`;
  if (name.endsWith("Seconds")) return `${words.replace(/ seconds$/, "")} ${short(v)} s`;
  if (name.endsWith("Bytes")) return `${words.replace(/ bytes$/, "")} ${bytesText(v)}`;
  return `${words} ${short(v)}`;
}

/** Policy texts carry exact figures ("pending 19124224 B"): bytes get a unit, long decimals are cut. */
export function humanize(text: string): string {
  return text
    .replace(/\b(\d{4,}) B\b/g, (_, n: string) => bytesText(Number(n)))
    .replace(/\b\d+\.\d{4,}\b/g, (x) => short(Number(x)));
}
