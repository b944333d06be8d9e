// Self-contained HTML reports: inline CSS and hand-written SVG charts, no scripts, no
// network fetches.
import type { RoundRow } from "../engine/report.js";

const COLORS = ["#3b6fb6", "#e07b39", "#5a9e4b", "#c44e52", "#8172b2", "#937860", "#da8bc3", "#8c8c8c"];

export function esc(s: unknown): string {
  return String(s).replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );
}

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmt(v: number): string {
  if (Math.abs(v) >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (Math.abs(v) >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return `${+v.toFixed(2)}`;
}

export interface Series {
  name: string;
  values: number[];
}

/** Grouped bar chart: one group per category, one bar per series. */
export function barChart(title: string, categories: string[], series: Series[], yLabel: string): string {
  const W = 720,
    H = 300,
    L = 64,
    R = 16,
    T = 36,
    B = 64;
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values.filter(Number.isFinite))));
  const gw = (W - L - R) / Math.max(1, categories.length);
  const bw = Math.max(1, (gw * 0.8) / Math.max(1, series.length));
  const y = (v: number) => T + (H - T - B) * (1 - v / max);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">`,
  ];
  out.push(`<text x="${W / 2}" y="20" text-anchor="middle" class="t">${esc(title)}</text>`);
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    out.push(
      `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" class="g"/><text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${fmt(v)}</text>`,
    );
  }
  out.push(`<text transform="translate(14 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  categories.forEach((c, i) => {
    const x0 = L + i * gw + gw * 0.1;
    series.forEach((s, j) => {
      const v = s.values[i] ?? 0;
      if (!Number.isFinite(v)) return;
      out.push(
        `<rect x="${(x0 + j * bw).toFixed(1)}" y="${y(v).toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${(H - B - y(v)).toFixed(1)}" fill="${COLORS[j % COLORS.length]}"><title>${esc(`${s.name} ${c}: ${v}`)}</title></rect>`,
      );
    });
    if (categories.length <= 40)
      out.push(
        `<text x="${(L + i * gw + gw / 2).toFixed(1)}" y="${H - B + 14}" text-anchor="middle" class="s">${esc(c)}</text>`,
      );
  });
  out.push(
    legend(
      series.map((s) => s.name),
      L,
      H - 22,
    ),
  );
  out.push("</svg>");
  return out.join("");
}

/** Line chart of (x, y) points per series. */
export function lineChart(
  title: string,
  lines: Array<{ name: string; points: Array<[number, number]> }>,
  xLabel: string,
  yLabel: string,
): string {
  const W = 720,
    H = 300,
    L = 64,
    R = 16,
    T = 36,
    B = 64;
  const all = lines.flatMap((l) => l.points);
  const xmax = niceMax(Math.max(0, ...all.map((p) => p[0])));
  const ymax = niceMax(Math.max(0, ...all.map((p) => p[1])));
  const x = (v: number) => L + (W - L - R) * (v / xmax);
  const y = (v: number) => T + (H - T - B) * (1 - v / ymax);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">`,
  ];
  out.push(`<text x="${W / 2}" y="20" text-anchor="middle" class="t">${esc(title)}</text>`);
  for (let i = 0; i <= 4; i++) {
    const v = (ymax * i) / 4;
    const u = (xmax * i) / 4;
    out.push(
      `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" class="g"/><text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${fmt(v)}</text>`,
    );
    out.push(`<text x="${x(u)}" y="${H - B + 16}" text-anchor="middle">${fmt(u)}</text>`);
  }
  out.push(`<text x="${(L + W - R) / 2}" y="${H - B + 32}" text-anchor="middle">${esc(xLabel)}</text>`);
  out.push(`<text transform="translate(14 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  lines.forEach((l, j) => {
    const d = l.points.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)} ${y(p[1]).toFixed(1)}`).join("");
    out.push(`<path d="${d}" fill="none" stroke="${COLORS[j % COLORS.length]}" stroke-width="2"/>`);
  });
  out.push(
    legend(
      lines.map((l) => l.name),
      L,
      H - 14,
    ),
  );
  out.push("</svg>");
  return out.join("");
}

function legend(names: string[], x: number, y: number): string {
  let cx = x;
  return names
    .map((n, i) => {
      const s = `<rect x="${cx}" y="${y - 9}" width="10" height="10" fill="${COLORS[i % COLORS.length]}"/><text x="${cx + 14}" y="${y}">${esc(n)}</text>`;
      cx += 24 + n.length * 7;
      return s;
    })
    .join("");
}

export function table(head: string[], rows: Array<Array<string | number>>): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
}

/** A whole HTML page around `body`. */
export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f2f2f2}
td:first-child,th:first-child{text-align:left}
svg{display:block;margin:12px 0;font-size:11px}svg .t{font-size:14px;font-weight:600}svg .g{stroke:#e5e5e5}svg .s{font-size:10px}
pre{background:#f6f6f6;padding:8px;overflow:auto}
</style></head><body>
<h1>${esc(title)}</h1>
${body}
</body></html>
`;
}

/** The charts of one migration: bytes per round, pages per round, cumulative bytes over time. */
export function migrationCharts(rounds: RoundRow[], timeline: Array<[number, number]>): string {
  const cats = rounds.map((r) => (r.phase === "precopy" ? String(r.round) : `${r.round} ${r.phase}`));
  return [
    barChart(
      "Bytes per round",
      cats,
      [{ name: "bytes sent (MiB)", values: rounds.map((r) => r.bytes / 2 ** 20) }],
      "MiB",
    ),
    barChart(
      "Pages per round",
      cats,
      [
        { name: "dirtied", values: rounds.map((r) => r.dirtied) },
        { name: "sent", values: rounds.map((r) => r.sent) },
        { name: "skipped (unchanged)", values: rounds.map((r) => r.skipped) },
        { name: "deferred", values: rounds.map((r) => r.deferred) },
      ],
      "pages",
    ),
    lineChart(
      "Cumulative bytes over time",
      [{ name: "delivered to the destination (MiB)", points: timeline.map(([t, b]) => [t, b / 2 ** 20]) }],
      "virtual seconds",
      "MiB",
    ),
  ].join("\n");
}
