// Self-contained HTML reports: inline CSS and hand-written SVG charts (chart/), no
// scripts, no network fetches: one file that opens anywhere.
import { short } from "../util/text-table.js";
import { esc } from "./chart/svg.js";

export { esc };

/** A table: numbers right-aligned, words left-aligned. */
export function table(head: string[], rows: Array<Array<string | number>>): string {
  const cell = (c: string | number) =>
    `<td${typeof c === "number" || NUMERIC.test(c) ? "" : ' class="w"'}>${esc(typeof c === "number" ? short(c) : c)}</td>`;
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map(cell).join("")}</tr>`).join("")}</tbody></table>`;
}

const NUMERIC = /^-?[\d.,]+( \S+)?$/;

/** Number and unit kept on one line in labels: "10 MiB/s" → "10\u00a0MiB/s". */
export function keepUnits(text: string): string {
  return text.replace(/(\d) (?=[A-Za-zµ%])/g, "$1\u00a0");
}

/** A whole HTML page around `body`. */
export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f2f2f2}
td{white-space:nowrap}td.w{text-align:left}th{vertical-align:bottom}
svg{display:block;margin:12px 0;font-size:11px;font-family:system-ui,sans-serif}svg .t{font-size:14px;font-weight:600}
svg .g{stroke:#e5e5e5}svg .a{stroke:#888}svg .xl{font-size:11px}
svg .lim{stroke:#c00;stroke-width:1.5;stroke-dasharray:6 4}svg .limt{fill:#c00;paint-order:stroke;stroke:#fff;stroke-width:3px}
svg .mr{stroke:#999;stroke-dasharray:2 3}svg .mp{stroke:#333;stroke-width:1.5;stroke-dasharray:5 3}
svg .tot{font-size:10px;fill:#444}svg .mk{font-size:10px;paint-order:stroke;stroke:#fff;stroke-width:3px}
pre{background:#f6f6f6;padding:8px;overflow:auto}pre.wrap{white-space:pre-wrap}
</style></head><body>
<h1>${esc(title)}</h1>
${body}
</body></html>
`;
}
