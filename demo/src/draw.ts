// Canvas drawing: the memory maps, the per-round bars and the dirty-set curve.
import { CODECS } from "../../src/codec/codecs.js";
import type { RoundRow } from "../../src/engine/report.js";
import { codecColor, SOURCE_STYLES, type StateStyle } from "./page-states.js";

const DIRTY = SOURCE_STYLES[2].color;
const DEFERRED = SOURCE_STYLES[3].color;

/**
 * Draws one cell per page (or per group of pages, showing the most telling state of the
 * group); returns the pages per cell.
 */
export function drawMap(canvas: HTMLCanvasElement, states: Uint8Array, styles: readonly StateStyle[]): number {
  const ctx = canvas.getContext("2d")!;
  const W = canvas.width;
  const H = canvas.height;
  // the largest cell (up to 16 px) that fits every page; below 1 px, pages share cells
  let cell = Math.max(1, Math.min(16, Math.floor(Math.sqrt((W * H) / states.length))));
  while (cell > 1 && Math.ceil(states.length / Math.floor(W / cell)) * cell > H) cell--;
  const cols = Math.floor(W / cell);
  const cells = Math.floor(H / cell) * cols;
  const group = Math.max(1, Math.ceil(states.length / cells));
  ctx.clearRect(0, 0, W, H);
  const gap = cell >= 5 ? 1 : 0;
  for (let c = 0, p = 0; p < states.length; c++, p += group) {
    let best = states[p];
    for (let q = p + 1; q < Math.min(p + group, states.length); q++)
      if (styles[states[q]].rank > styles[best].rank) best = states[q];
    ctx.fillStyle = styles[best].color;
    ctx.fillRect((c % cols) * cell, Math.floor(c / cols) * cell, cell - gap, cell - gap);
  }
  return group;
}

/** Bar segments, bottom up: the round's count columns in codec-table order, then deferred. */
const KINDS: Array<[keyof RoundRow, string]> = [
  ...CODECS.map((c): [keyof RoundRow, string] => [c.count, c.record === null ? "#9aa3b2" : codecColor(c.name)]),
  ["deferred", DEFERRED],
];

function axes(ctx: CanvasRenderingContext2D, W: number, H: number, max: number, left: number, bottom: number): void {
  ctx.clearRect(0, 0, W, H);
  ctx.strokeStyle = "#9aa3b2";
  ctx.beginPath();
  ctx.moveTo(left, 4);
  ctx.lineTo(left, H - bottom);
  ctx.lineTo(W - 4, H - bottom);
  ctx.stroke();
  ctx.fillStyle = "#5a6272";
  ctx.font = "10px system-ui, sans-serif";
  ctx.textAlign = "right";
  ctx.fillText(String(Math.round(max)), left - 3, 12);
  ctx.fillText("0", left - 3, H - bottom);
}

/** Stacked bars: pages per round by encoding, then skipped and deferred. */
export function drawBars(canvas: HTMLCanvasElement, rounds: RoundRow[]): void {
  const ctx = canvas.getContext("2d")!;
  const W = canvas.width;
  const H = canvas.height;
  const left = 44;
  const bottom = 28;
  const max = Math.max(1, ...rounds.map((r) => KINDS.reduce((s, [k]) => s + (r[k] as number), 0)));
  axes(ctx, W, H, max, left, bottom);
  const n = Math.max(rounds.length, 8);
  const bw = (W - left - 8) / n;
  const scale = (H - bottom - 8) / max;
  rounds.forEach((r, i) => {
    let y = H - bottom;
    for (const [k, color] of KINDS) {
      const h = (r[k] as number) * scale;
      ctx.fillStyle = color;
      ctx.fillRect(left + i * bw + 2, y - h, Math.max(1, bw - 4), h);
      y -= h;
    }
    ctx.fillStyle = "#5a6272";
    ctx.textAlign = "center";
    ctx.fillText(
      r.phase === "precopy" ? String(r.round) : r.phase === "postcopy" ? "post" : r.phase === "current" ? "…" : "stop",
      left + i * bw + bw / 2,
      H - bottom + 12,
    );
  });
  ctx.textAlign = "left";
  let x = left;
  for (const [k, color] of KINDS) {
    ctx.fillStyle = color;
    ctx.fillRect(x, H - 10, 8, 8);
    ctx.fillStyle = "#5a6272";
    ctx.fillText(k, x + 10, H - 2);
    x += 16 + ctx.measureText(k).width;
  }
}

/**
 * The dirty set at the start of each round against QEMU's stop threshold: the pages the
 * link can send within the downtime limit at the bandwidth the round achieved.
 */
export function drawCurve(
  canvas: HTMLCanvasElement,
  rounds: RoundRow[],
  maxBandwidth: number,
  downtimeLimitMs: number,
): void {
  const ctx = canvas.getContext("2d")!;
  const W = canvas.width;
  const H = canvas.height;
  const left = 44;
  const bottom = 18;
  const pre = rounds.filter((r) => r.phase === "precopy");
  const threshold = pre.map(
    (r) => (Math.min(maxBandwidth, r.seconds > 0 ? r.bytes / r.seconds : maxBandwidth) * downtimeLimitMs) / 1000 / 4096,
  );
  const max = Math.max(
    1,
    ...pre.map((r) => r.dirtied),
    ...threshold.map((t) => Math.min(t, Math.max(1, ...pre.map((r) => r.dirtied)) * 1.5)),
  );
  axes(ctx, W, H, max, left, bottom);
  const n = Math.max(pre.length, 8);
  const x = (i: number) => left + ((W - left - 12) * (i + 0.5)) / n;
  const y = (v: number) => H - bottom - (Math.min(v, max) / max) * (H - bottom - 8);
  const line = (values: number[], color: string, dash: number[]) => {
    ctx.strokeStyle = color;
    ctx.setLineDash(dash);
    ctx.lineWidth = 2;
    ctx.beginPath();
    values.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.lineWidth = 1;
    ctx.fillStyle = color;
    values.forEach((v, i) => ctx.fillRect(x(i) - 2, y(v) - 2, 4, 4));
  };
  line(threshold, "#f5a524", [5, 4]);
  line(
    pre.map((r) => r.dirtied),
    DIRTY,
    [],
  );
  ctx.textAlign = "left";
  ctx.fillStyle = DIRTY;
  ctx.fillText("dirty pages at round start", left + 8, 14);
  ctx.fillStyle = "#c07d00";
  ctx.fillText(`stop threshold (bandwidth × ${downtimeLimitMs} ms)`, left + 170, 14);
}
