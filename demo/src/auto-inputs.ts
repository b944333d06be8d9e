// Auto mode's measured inputs (report.decisions, kind "auto"), and what decided: the
// predicted total time, downtime and fault stalls of each mode (the probe replayed in the
// simulator, src/sim/mode-prediction.ts; the lowest score wins), or, when the probe saw
// nothing to replay, the thresholds of the fixed rule (src/engine/auto-mode.ts):
//   W ≤ B·T or D ≤ 0.3·B → precopy · D ≤ 0.8·B → precopy, reuse-distance · else hybrid
import type { PolicyDecision } from "../../src/engine/report.js";
import { PAGE_SIZE } from "../../src/kernel/abi.js";

export function renderAutoInputs(el: HTMLElement, decisions: PolicyDecision[], downtimeLimitMs: number): boolean {
  const d = decisions.find((x) => x.kind === "auto");
  if (!d?.inputs) {
    el.hidden = true;
    el.innerHTML = "";
    return false;
  }
  const i = d.inputs as Record<string, number>;
  const B = i.bandwidthBytesPerSecond / PAGE_SIZE;
  const T = downtimeLimitMs / 1000;
  const D = i.dirtyPagesPerSecond;
  const W = i.workingSetPages;
  const n = (x: number) => Math.round(x).toLocaleString("en");
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  const check = (ok: boolean) => (ok ? "✔" : "✘");
  const rows: Array<[string, string, string]> = [
    [
      "measured over",
      `${(i.probeSeconds * 1000).toFixed(0)} ms`,
      "the probe: the guest runs, the dirty log is read twice",
    ],
    ["dirty rate D", `${n(D)} pages/s`, "pages written per second (second harvest)"],
    ["working set W", `${n(W)} pages`, "distinct pages written during the probe"],
    ["zero pages", pct(i.zeroShare), "share of a page sample"],
    ["duplicate pages", pct(i.duplicateShare), "dedup is switched on from 1 %"],
    ["bandwidth B", `${n(B)} pages/s`, `${(i.bandwidthBytesPerSecond / 2 ** 20).toFixed(1)} MiB/s`],
  ];
  const predicted = ["precopy", "hybrid", "postcopy"].filter((m) => i[`${m}.score`] !== undefined);
  for (const m of predicted)
    rows.push([
      `${m} predicted`,
      `total ${n(i[`${m}.totalTimeMs`])} ms · downtime ${n(i[`${m}.downtimeMs`])} ms · stalls ${n(i[`${m}.faultStallMs`])} ms`,
      `score ${n(i[`${m}.score`])} (${(d.inputs as Record<string, string>).weights ?? "weighted"}; lowest wins)`,
    ]);
  if (!predicted.length)
    rows.push(
      [
        "W ≤ B·T",
        `${n(W)} ≤ ${n(B * T)} ${check(W <= B * T)}`,
        `working set fits the ${downtimeLimitMs} ms downtime limit`,
      ],
      ["D ≤ 0.3·B", `${n(D)} ≤ ${n(0.3 * B)} ${check(D <= 0.3 * B)}`, "rounds shrink fast: pre-copy"],
      ["D ≤ 0.8·B", `${n(D)} ≤ ${n(0.8 * B)} ${check(D <= 0.8 * B)}`, "pre-copy, skipping pages about to be rewritten"],
    );
  el.hidden = false;
  el.innerHTML =
    `<h2>Auto mode: what it measured</h2><table>${rows
      .map(([k, v, why]) => `<tr data-input="${k}"><td>${k}</td><td>${v}</td><td>${why}</td></tr>`)
      .join("")}</table>` + `<p class="rule">→ ${d.decision}</p>`;
  return true;
}
