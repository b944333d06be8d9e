// Line charts of (x, y) points per series, with reference lines (a downtime limit) and
// vertical markers (round starts, the pause). Each axis is linear from 0 unless asked to
// choose: then it is logarithmic when its values differ by 10× or more.
import { short } from "../../util/text-table.js";
import type { Chart } from "./bar-chart.js";
import { labelsSvg, layoutXLabels } from "./label-layout.js";
import { chooseScale, linearScale, tickText, type Scale } from "./scale.js";
import {
  COLORS,
  esc,
  FONT,
  legendSvg,
  markersSvg,
  referenceLinesSvg,
  svgOpen,
  yAxisSvg,
  yOf,
  type Marker,
  type Plot,
  type ReferenceLine,
} from "./svg.js";

export interface LineChartSpec {
  title: string;
  lines: Array<{ name: string; points: Array<[number, number]> }>;
  xLabel: string;
  yLabel: string;
  /** "linear" (from 0) or "auto" (log when the values differ by 10× or more); default linear. */
  xScale?: "linear" | "auto";
  yScale?: "linear" | "auto";
  limits?: ReferenceLine[];
  /** Vertical markers at x values. */
  markers?: Array<{ at: number; label: string; kind: Marker["kind"] }>;
}

const WIDTH = 720;
const PLOT_HEIGHT = 210;
const TOP = 36;
const LEFT = 64;
const RIGHT = 16;

export function lineChart(spec: LineChartSpec): Chart {
  const points = spec.lines.flatMap((l) => l.points).filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]));
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const limits = spec.limits ?? [];
  const markerXs = (spec.markers ?? []).map((m) => m.at);
  const x: Scale =
    spec.xScale === "auto" ? chooseScale(xs, xs, markerXs) : linearScale(Math.max(0, ...xs, ...markerXs));
  const limitValues = limits.map((l) => l.value);
  const y: Scale =
    spec.yScale === "auto" ? chooseScale(ys, ys, limitValues) : linearScale(Math.max(0, ...ys, ...limitValues));
  const plot: Plot = { left: LEFT, top: TOP, width: WIDTH - LEFT - RIGHT, height: PLOT_HEIGHT };
  const xOf = (v: number) => plot.left + plot.width * x.at(v);
  // x tick labels go through the same layout as category labels: they never overlap
  const tickSlot = plot.width / Math.max(1, x.ticks.length - 1);
  const labels = layoutXLabels(x.ticks.map(tickText), x.ticks.map(xOf), tickSlot, plot.top + plot.height, FONT);
  const xTitleY = plot.top + plot.height + labels.depth + 14;
  const legendTop = xTitleY + 10;
  const legend = legendSvg(
    spec.lines.map((l) => l.name),
    plot.left,
    legendTop,
    plot.width,
  );
  const height = legendTop + legend.height + 6;
  const out = [svgOpen(spec.title, WIDTH, height), yAxisSvg(plot, y, spec.yLabel)];
  out.push(
    `<g data-role="x-axis" data-scale="${x.kind}" data-min="${x.min}" data-max="${x.max}">${labelsSvg(labels, esc)}<text x="${(plot.left + plot.width / 2).toFixed(1)}" y="${xTitleY.toFixed(1)}" text-anchor="middle">${esc(x.kind === "log" ? `${spec.xLabel} (log scale)` : spec.xLabel)}</text></g>`,
  );
  spec.lines.forEach((l, j) => {
    const pts = l.points.filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]));
    const d = pts.map((p, i) => `${i ? "L" : "M"}${xOf(p[0]).toFixed(1)} ${yOf(plot, y, p[1]).toFixed(1)}`).join("");
    const color = COLORS[j % COLORS.length];
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
    if (pts.length <= 12)
      for (const p of pts)
        out.push(
          `<circle cx="${xOf(p[0]).toFixed(1)}" cy="${yOf(plot, y, p[1]).toFixed(1)}" r="3" fill="${color}"><title>${esc(`${l.name}: ${short(p[0])}, ${short(p[1])}`)}</title></circle>`,
        );
  });
  const markers: Marker[] = (spec.markers ?? []).map((m) => ({ x: xOf(m.at), label: m.label, kind: m.kind }));
  out.push(referenceLinesSvg(plot, y, limits), markersSvg(plot, markers), legend.svg, "</svg>");
  return {
    svg: out.join(""),
    layout: { labels, y, dataMax: Math.max(0, ...ys), bars: "values", limits, markers, width: WIDTH, height },
  };
}
