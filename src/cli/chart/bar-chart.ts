// Bar charts: one group per category, one bar per series side by side, or the series
// stacked into one bar. The y axis turns logarithmic when the groups differ by 10× or more;
// stacked bars whose totals differ that much show instead each segment's share of its bar
// (a log axis would misstate the segments), with the bar's total printed above it.
import { labelsSvg, layoutXLabels, textWidth, type XLabelLayout } from "./label-layout.js";
import { short } from "../../util/text-table.js";
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

export interface Series {
  name: string;
  values: number[];
}

export interface BarChartSpec {
  title: string;
  categories: string[];
  series: Series[];
  yLabel: string;
  /** Title under the x labels. */
  xLabel?: string;
  stacked?: boolean;
  /** Stacked bars whose totals differ by 10× or more: draw shares (0–100 %) and print totals. */
  sharesWhenSpread?: boolean;
  /** Horizontal lines, e.g. the downtime limit (kept on the axis). */
  limits?: ReferenceLine[];
  /** Vertical lines at the left edge of category `before` (e.g. the pause before the stop-and-copy round). */
  markers?: Array<{ before: number; label: string; kind: Marker["kind"] }>;
}

/** What was drawn and where: for checks that need no screenshot. */
export interface ChartLayout {
  labels: XLabelLayout;
  y: Scale;
  /** Largest value drawn (a stacked bar's total). */
  dataMax: number;
  /** "share": stacked bars drawn as shares of their totals, the axis in %. */
  bars: "values" | "share";
  limits: ReferenceLine[];
  markers: Marker[];
  width: number;
  height: number;
}

export interface Chart {
  svg: string;
  layout: ChartLayout;
}

const WIDTH = 720;
const PLOT_HEIGHT = 210;
const TOP = 36;
const RIGHT = 16;

export function barChart(spec: BarChartSpec): Chart {
  const { categories, series } = spec;
  const finite = (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? v : 0);
  const groupValue = (i: number) =>
    spec.stacked
      ? series.reduce((s, x) => s + Math.max(0, finite(x.values[i])), 0)
      : Math.max(0, ...series.map((x) => finite(x.values[i])));
  const groups = categories.map((_, i) => groupValue(i));
  const values = spec.stacked ? groups : series.flatMap((s) => s.values.filter(Number.isFinite));
  const limits = spec.limits ?? [];
  const chosen = chooseScale(
    groups,
    values,
    limits.map((l) => l.value),
  );
  const shares = !!(spec.stacked && spec.sharesWhenSpread && chosen.kind === "log");
  const y = shares ? linearScale(100) : chosen;
  // the left margin grows when the first rotated label reaches past the edge
  let left = 64;
  let labels = placeLabels(categories, left);
  if (labels.overflowLeft > 0) {
    left += labels.overflowLeft + 4;
    labels = placeLabels(categories, left);
  }
  const plot: Plot = { left, top: TOP, width: WIDTH - left - RIGHT, height: PLOT_HEIGHT };
  const slot = plot.width / Math.max(1, categories.length);
  const xTitleY = plot.top + plot.height + labels.depth + 14;
  const legendTop = spec.xLabel ? xTitleY + 10 : plot.top + plot.height + labels.depth + 10;
  const legend = legendSvg(
    series.map((s) => s.name),
    left,
    legendTop,
    plot.width,
  );
  const height = legendTop + legend.height + 6;
  const yTitle = shares ? `share of each bar's ${spec.yLabel}, %` : spec.yLabel;
  const out = [svgOpen(spec.title, WIDTH, height), yAxisSvg(plot, y, yTitle)];
  const base = plot.top + plot.height;
  categories.forEach((c, i) => {
    const x0 = plot.left + i * slot + slot * 0.1;
    if (spec.stacked) {
      const total = groups[i];
      const top = total > 0 ? yOf(plot, y, shares ? 100 : total) : base;
      const text = tickText(total);
      if (shares && textWidth(text, FONT - 1) < slot - 2)
        out.push(
          `<text x="${(x0 + slot * 0.4).toFixed(1)}" y="${plot.top - 4}" text-anchor="middle" class="tot">${text}</text>`,
        );
      let bottom = base;
      series.forEach((s, j) => {
        const v = Math.max(0, finite(s.values[i]));
        if (!(v > 0)) return;
        const h = (base - top) * (v / total); // share of the bar: exact on a linear axis, proportional on a log one
        out.push(rect(x0, bottom - h, slot * 0.8, h, j, `${s.name}, ${c}: ${short(v)}`));
        bottom -= h;
      });
    } else {
      const bw = (slot * 0.8) / Math.max(1, series.length);
      series.forEach((s, j) => {
        const v = s.values[i];
        if (v === undefined || !Number.isFinite(v)) return;
        const top = v > 0 ? yOf(plot, y, v) : base;
        out.push(rect(x0 + j * bw, top, Math.max(1, bw - 1), base - top, j, `${s.name}, ${c}: ${short(v)}`));
      });
    }
  });
  const markers: Marker[] = (spec.markers ?? []).map((m) => ({
    x: plot.left + m.before * slot,
    label: m.label,
    kind: m.kind,
  }));
  const xTitle = spec.xLabel
    ? `<text x="${(plot.left + plot.width / 2).toFixed(1)}" y="${xTitleY.toFixed(1)}" text-anchor="middle">${esc(spec.xLabel)}</text>`
    : "";
  out.push(
    referenceLinesSvg(plot, y, limits),
    markersSvg(plot, markers),
    labelsSvg(labels, esc),
    xTitle,
    legend.svg,
    "</svg>",
  );
  return {
    svg: out.join(""),
    layout: {
      labels,
      y,
      dataMax: shares ? 100 : Math.max(0, ...values),
      bars: shares ? "share" : "values",
      limits,
      markers,
      width: WIDTH,
      height,
    },
  };

  function placeLabels(texts: string[], l: number): XLabelLayout {
    const w = WIDTH - l - RIGHT;
    const s = w / Math.max(1, texts.length);
    return layoutXLabels(
      texts,
      texts.map((_, i) => l + (i + 0.5) * s),
      s,
      TOP + PLOT_HEIGHT,
      FONT,
    );
  }
}

function rect(x: number, y: number, w: number, h: number, color: number, title: string): string {
  return `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${w.toFixed(1)}" height="${Math.max(0, h).toFixed(1)}" fill="${COLORS[color % COLORS.length]}"><title>${esc(title)}</title></rect>`;
}
