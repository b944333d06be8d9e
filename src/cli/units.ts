// The one reader of command-line quantities. Sizes and rates always carry a unit, so that
// `--bandwidth 100` cannot mean bytes/s in one command and MB/s in another:
//   sizes      256MiB, 1GiB (IEC: 2^20, 2^30 bytes) or 256MB, 1GB (SI: 10^6, 10^9 bytes), 4096B
//   rates      100MiB/s (IEC), 125MB/s (SI), 1Gbit or 800Mbit/s or 800Mbps (bits, SI)
//   durations  300ms, 2s, 1.5min, 250us
// A bare number is refused with a hint (0 is accepted: it has no unit to get wrong), and so is
// a prefix without B or bit ("1G": QEMU reads 2^30, disk vendors 10^9). "B" is bytes and
// "bit" bits; a lone lower-case "b" ("100Mb/s") is refused as ambiguous. Prefixes ignore case.
import { UsageError } from "./usage.js";

const SI: Record<string, number> = { "": 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12 };
const IEC: Record<string, number> = { ki: 2 ** 10, mi: 2 ** 20, gi: 2 ** 30, ti: 2 ** 40 };

/** The forms the help and the errors show. */
export const UNIT_FORMS = {
  size: "256MiB or 1GiB (IEC, 2^20 and 2^30 bytes), 256MB or 1GB (SI, 10^6 and 10^9 bytes), 4096B",
  rate: "100MiB/s (IEC, 2^20 bytes/s), 125MB/s (SI, 10^6 bytes/s), 1Gbit or 800Mbit/s (bits/s, SI)",
  duration: "300ms, 2s, 1.5min, 250us",
} as const;

const NUMBER = String.raw`(\d+(?:\.\d+)?)`;
const SIZE_RE = new RegExp(String.raw`^${NUMBER}\s*([a-zA-Z]*)$`);
const RATE_RE = new RegExp(String.raw`^${NUMBER}\s*([a-zA-Z]*)(?:\/s)?$`);
const DURATION_RE = new RegExp(String.raw`^${NUMBER}\s*([a-z]*)$`, "i");

/** A prefix ("", k, M, Gi…) to its multiplier, or undefined. */
function prefix(p: string): number | undefined {
  const low = p.toLowerCase();
  return SI[low] ?? IEC[low];
}

/** "100" → "100MiB/s (IEC, 2^20) or 100MB/s (SI, 10^6) or 800Mbit" */
function rateExamples(n: string): string {
  return `${n}MiB/s (IEC, 2^20) or ${n}MB/s (SI, 10^6) or ${+(Number(n) * 8).toFixed(3)}Mbit`;
}

function sizeExamples(n: string): string {
  return `${n}MiB (IEC, 2^20) or ${n}MB (SI, 10^6) or ${n}B (bytes)`;
}

/** Bytes from "1GiB", "512MiB", "1.5GB", "4096B" (or "0"). */
export function parseSize(text: string, what: string): number {
  const t = text.trim();
  const m = SIZE_RE.exec(t);
  if (!m) throw new UsageError(`${what} ${text}: not a size; e.g. ${UNIT_FORMS.size}`);
  const [, n, unit] = m;
  if (unit === "") {
    if (Number(n) === 0) return 0;
    throw new UsageError(`${what} ${text}: give a unit, e.g. ${sizeExamples(n)}`);
  }
  const bytes = /^(.*)B$/.exec(unit);
  const mult = bytes ? prefix(bytes[1]) : undefined;
  if (mult === undefined) throw new UsageError(`${what} ${text}: ${unitProblem(n, unit, "size")}`);
  const v = Number(n) * mult;
  if (!Number.isInteger(v)) throw new UsageError(`${what} ${text}: not a whole number of bytes`);
  return v;
}

/** Bytes per second from "100MiB/s", "125MB/s", "1Gbit", "800Mbit/s", "800Mbps". */
export function parseRate(text: string, what: string): number {
  const t = text.trim();
  const m = RATE_RE.exec(t);
  if (!m) throw new UsageError(`${what} ${text}: not a rate; e.g. ${UNIT_FORMS.rate}`);
  const [, n, unit] = m;
  if (unit === "") throw new UsageError(`${what} ${text}: give a unit, e.g. ${rateExamples(n)}`);
  const perSecond = t.endsWith("/s");
  const bits = /^([a-zA-Z]?)(bit|bps)$/.exec(unit);
  const bytes = /^(.*)B$/.exec(unit);
  let v: number | undefined;
  if (bits && !(perSecond && bits[2] === "bps")) {
    const mult = SI[bits[1].toLowerCase()];
    if (mult !== undefined) v = (Number(n) * mult) / 8;
  } else if (bytes && prefix(bytes[1]) !== undefined) {
    if (!perSecond) throw new UsageError(`${what} ${text}: a rate is per second: ${n}${unit}/s`);
    v = Number(n) * prefix(bytes[1])!;
  }
  if (v === undefined) throw new UsageError(`${what} ${text}: ${unitProblem(n, unit, "rate")}`);
  if (!(v > 0)) throw new UsageError(`${what} ${text}: a rate must be more than 0`);
  return v;
}

/** Why a unit was not read, and what to write instead. */
function unitProblem(n: string, unit: string, kind: "size" | "rate"): string {
  const per = kind === "rate" ? "/s" : "";
  const low = unit.toLowerCase();
  const power = "kmgt".indexOf(low[0]) + 1;
  const si = power === 1 ? "k" : unit[0].toUpperCase();
  const iec = `${unit[0].toUpperCase()}i`;
  if (power > 0 && low === `${low[0]}i`) return `say ${n}${iec}B${per}`;
  if (power > 0 && low.length === 1)
    return `ambiguous unit '${unit}': say ${n}${iec}B${per} (IEC, 2^${10 * power}) or ${n}${si}B${per} (SI, 10^${3 * power})${kind === "rate" ? ` or ${n}${si}bit (bits)` : ""}`;
  const p = unit.slice(0, -1).toLowerCase();
  if (unit.endsWith("b") && IEC[p] !== undefined) return `say ${n}${iec}B${per}`;
  if (unit.endsWith("b") && SI[p] !== undefined)
    return `'b' could be bits or bytes: say ${n}${p ? si : ""}B${per} (bytes)${kind === "rate" ? ` or ${n}${p ? si : ""}bit (bits)` : ""}`;
  return `unknown unit '${unit}'; e.g. ${UNIT_FORMS[kind]}`;
}

const SECONDS: Record<string, number> = { us: 1e-6, ms: 1e-3, s: 1, min: 60 };

/** Seconds from "300ms", "2s", "1.5min", "250us" (or "0"). */
export function parseDuration(text: string, what: string): number {
  const m = DURATION_RE.exec(text.trim());
  if (!m) throw new UsageError(`${what} ${text}: not a duration; e.g. ${UNIT_FORMS.duration}`);
  const [, n, unit] = m;
  if (unit === "") {
    if (Number(n) === 0) return 0;
    throw new UsageError(`${what} ${text}: give a unit, e.g. ${n}ms or ${n}s`);
  }
  const mult = SECONDS[unit.toLowerCase()];
  if (mult === undefined) throw new UsageError(`${what} ${text}: unknown unit '${unit}'; e.g. ${UNIT_FORMS.duration}`);
  return Number(n) * mult;
}

/** A plain number (counts, shares, seeds) in [min, max]. */
export function parseNumber(
  text: string,
  what: string,
  { min = -Infinity, max = Infinity, integer = false } = {},
): number {
  const v = Number(text);
  if (text.trim() === "" || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw new UsageError(
      `${what}: want ${integer ? "an integer" : "a number"}${min > -Infinity ? ` >= ${min}` : ""}${max < Infinity ? ` <= ${max}` : ""}, got '${text}'`,
    );
  }
  return v;
}

/** "1.0 GiB", "94.2 MiB". */
export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${Math.round(n)} B`;
}

/** "1 Gbit/s" for 125e6, "100 MiB/s" for 104857600. */
export function formatRate(bytesPerSecond: number): string {
  const mib = bytesPerSecond / 2 ** 20;
  if (Number.isInteger(Math.round(mib * 1000) / 1000) && mib >= 1) return `${Math.round(mib)} MiB/s`;
  const bits = bytesPerSecond * 8;
  if (bits >= 1e9) return `${+(bits / 1e9).toFixed(2)} Gbit/s`;
  return `${+(bits / 1e6).toFixed(1)} Mbit/s`;
}
