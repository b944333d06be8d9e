// Axis scales for the HTML charts: a linear axis from 0 whose top is the first nice tick
// at or above the data, or a log axis when the groups of a chart differ by 10× or more
// (10 MiB/s runs next to 100 MiB/s ones: on one linear axis the small group is a sliver).

export interface Scale {
  kind: "linear" | "log";
  /** Axis bottom (0 for linear; a power of ten at or below the smallest value for log). */
  min: number;
  /** Axis top: just above the largest value. */
  max: number;
  ticks: number[];
  /** Position of `v` from 0 (bottom) to 1 (top); values below the axis clamp to 0. */
  at(v: number): number;
}

/** Groups whose largest values differ by this factor get a log axis. */
export const LOG_RATIO = 10;

/** The nice step (1, 2, 2.5 or 5 × 10^k) that cuts `max` into at most `count` intervals. */
function niceStep(max: number, count: number): number {
  const raw = max / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5]) if (m * p >= raw) return m * p;
  return 10 * p;
}

/** 0 … first tick ≥ max, about 5 intervals; the top is below 1.4 × max. */
export function linearScale(max: number, count = 5): Scale {
  const top0 = max > 0 && Number.isFinite(max) ? max : 1;
  const step = niceStep(top0, count);
  const n = Math.max(1, Math.ceil(top0 / step - 1e-9));
  const top = Math.max(roundTick(n * step), top0);
  const ticks = Array.from({ length: n + 1 }, (_, i) => roundTick(i * step));
  return { kind: "linear", min: 0, max: top, ticks, at: (v) => Math.max(0, v) / top };
}

/** From the power of ten at or below `min` to a half-step mantissa above `max` (top < 1.5 × max). */
export function logScale(min: number, max: number): Scale {
  const lo = 10 ** Math.floor(Math.log10(min));
  const k = Math.floor(Math.log10(max));
  const top = roundTick((Math.ceil((max / 10 ** k) * 2 - 1e-9) / 2) * 10 ** k);
  const ticks: number[] = [];
  const decades = Math.log10(top / lo);
  for (let e = Math.log10(lo); 10 ** e <= top * (1 + 1e-9); e++)
    for (const m of decades > 4 ? [1] : [1, 2, 5]) {
      const t = roundTick(m * 10 ** e);
      if (t >= lo && t <= top * (1 + 1e-9)) ticks.push(t);
    }
  const span = Math.log10(top / lo);
  const at = (v: number) => (v <= lo ? 0 : Math.log10(v / lo) / span);
  // the top is always labelled; a tick just under it would print over it
  const kept = ticks.filter((t) => t !== top && at(t) < 0.9);
  return { kind: "log", min: lo, max: top, ticks: [...kept, top], at };
}

/**
 * A linear axis unless the groups' largest positive values differ by LOG_RATIO or more; then
 * a log axis from the smallest positive value. `extra` (a limit line) is kept on the axis.
 */
export function chooseScale(groupMaxima: number[], values: number[], extra: number[] = []): Scale {
  const positive = groupMaxima.filter((v) => v > 0 && Number.isFinite(v));
  const max = Math.max(0, ...values.filter(Number.isFinite), ...extra);
  if (positive.length >= 2 && Math.max(...positive) / Math.min(...positive) >= LOG_RATIO) {
    const smallest = Math.min(...values.filter((v) => v > 0 && Number.isFinite(v)), ...extra.filter((v) => v > 0));
    return logScale(smallest, max);
  }
  return linearScale(max);
}

/** Tick values without float noise (0.30000000000000004 → 0.3). */
function roundTick(v: number): number {
  return +v.toPrecision(12);
}

/** A tick label: 1.5M, 250k, 12, 0.25. */
export function tickText(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${+(v / 1e9).toFixed(2)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toFixed(2)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
  if (a >= 10 || v === 0) return `${+v.toFixed(1)}`;
  return `${+v.toPrecision(3)}`;
}
