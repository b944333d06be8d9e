// Pieces shared by the SVG charts: escaping, colours, the y axis with its grid, reference
// lines (a downtime limit), vertical markers (round starts, the pause) and the legend.
import { textWidth } from "./label-layout.js";
import { tickText, type Scale } from "./scale.js";

export const COLORS = ["#3b6fb6", "#e07b39", "#5a9e4b", "#c44e52", "#8172b2", "#937860", "#da8bc3", "#8c8c8c"];

export function esc(s: unknown): string {
  return String(s).replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );
}

/** The plot area: left, top, width, height in SVG units. */
export interface Plot {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** A horizontal line at a value, e.g. the downtime limit. */
export interface ReferenceLine {
  value: number;
  label: string;
}

/** A vertical line at an x position (plot coordinates), e.g. "pause" or "r3". */
export interface Marker {
  x: number;
  label: string;
  kind: "round" | "pause";
}

export const FONT = 11;

export function yOf(plot: Plot, scale: Scale, v: number): number {
  return plot.top + plot.height * (1 - scale.at(v));
}

/** Grid lines and tick labels of the y axis, and its title. */
export function yAxisSvg(plot: Plot, scale: Scale, title: string): string {
  const out = scale.ticks.map((t) => {
    const y = yOf(plot, scale, t).toFixed(1);
    return `<line x1="${plot.left}" x2="${plot.left + plot.width}" y1="${y}" y2="${y}" class="g"/><text x="${plot.left - 6}" y="${(+y + 4).toFixed(1)}" text-anchor="end">${tickText(t)}</text>`;
  });
  const axisTitle = scale.kind === "log" ? `${title} (log scale)` : title;
  out.push(
    `<line x1="${plot.left}" x2="${plot.left + plot.width}" y1="${plot.top + plot.height}" y2="${plot.top + plot.height}" class="a"/>`,
    `<text transform="translate(14 ${(plot.top + plot.height / 2).toFixed(1)}) rotate(-90)" text-anchor="middle">${esc(axisTitle)}</text>`,
  );
  return `<g data-role="y-axis" data-scale="${scale.kind}" data-min="${scale.min}" data-max="${scale.max}">${out.join("")}</g>`;
}

/** Dashed horizontal reference lines with their label at the right end, above the line. */
export function referenceLinesSvg(plot: Plot, scale: Scale, lines: ReferenceLine[]): string {
  return lines
    .map((l) => {
      const y = yOf(plot, scale, l.value).toFixed(1);
      const right = plot.left + plot.width;
      return `<g data-role="limit" data-value="${l.value}"><line x1="${plot.left}" x2="${right}" y1="${y}" y2="${y}" class="lim"/><text x="${right - 4}" y="${(+y - 4).toFixed(1)}" text-anchor="end" class="limt">${esc(l.label)}</text></g>`;
    })
    .join("");
}

/**
 * Dashed vertical markers with their labels along the top of the plot, on up to three
 * levels so that labels of close markers do not overlap; a label that fits on no level is
 * left out (the line stays, with a tooltip).
 */
export function markersSvg(plot: Plot, markers: Marker[]): string {
  const levels: number[][] = [[], [], []]; // right ends of the labels placed on each level
  return markers
    .map((m) => {
      const w = textWidth(m.label, FONT - 1);
      const x0 = m.x + 3;
      const level = levels.findIndex((ends) => ends.every((end) => end + 4 <= x0));
      const fits = level >= 0 && x0 + w <= plot.left + plot.width + 24;
      if (fits) levels[level].push(x0 + w);
      const y = plot.top + 10 + (fits ? level : 0) * (FONT + 1);
      const text = fits ? `<text x="${x0.toFixed(1)}" y="${y}" class="mk">${esc(m.label)}</text>` : "";
      return `<g data-role="marker" data-kind="${m.kind}"><line x1="${m.x.toFixed(1)}" x2="${m.x.toFixed(1)}" y1="${plot.top}" y2="${plot.top + plot.height}" class="${m.kind === "pause" ? "mp" : "mr"}"><title>${esc(m.label)}</title></line>${text}</g>`;
    })
    .join("");
}

/** Legend rows wrapped to `width`; returns the SVG and the height it takes. */
export function legendSvg(names: string[], x: number, y: number, width: number): { svg: string; height: number } {
  const rowHeight = FONT + 7;
  let cx = x;
  let cy = y;
  const out = names.map((n, i) => {
    const w = 14 + textWidth(n, FONT) + 14;
    if (cx > x && cx + w > x + width) {
      cx = x;
      cy += rowHeight;
    }
    const s = `<rect x="${cx.toFixed(1)}" y="${cy}" width="10" height="10" fill="${COLORS[i % COLORS.length]}"/><text x="${(cx + 14).toFixed(1)}" y="${cy + 9}">${esc(n)}</text>`;
    cx += w;
    return s;
  });
  return { svg: `<g data-role="legend">${out.join("")}</g>`, height: names.length ? cy - y + rowHeight : 0 };
}

export function svgOpen(title: string, width: number, height: number): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${Math.ceil(height)}" width="${width}" height="${Math.ceil(height)}" role="img" aria-label="${esc(title)}"><text x="${width / 2}" y="20" text-anchor="middle" class="t">${esc(title)}</text>`;
}
