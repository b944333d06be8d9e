// Command-line quantities: sizes (1GiB, 128MiB, 4096), rates (1Gbit, 100MiB/s, 125MB/s)
// and durations (300ms, 2s). A malformed value is a UsageError (exit 2).
import { UsageError } from "./usage.js";

const SIZE: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** Bytes from "1GiB", "512MiB", "4096", "1.5GB". */
export function parseSize(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m ? SIZE[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined)
    throw new UsageError(`${what}: cannot read size '${text}' (examples: 1GiB, 512MiB, 4096)`);
  return Math.round(Number(m[1]) * unit);
}

/** Bytes per second from "1Gbit", "100Mbit", "100MiB/s", "125MB/s", "1e8". */
export function parseRate(text: string, what: string): number {
  const t = text.trim();
  const bits = /^(\d+(?:\.\d+)?(?:e\d+)?)\s*([kmg]?)(bit|bps|b\/s)?$/i.exec(t);
  if (bits?.[3] && /bit|bps/i.test(bits[3])) {
    const mult = { "": 1, k: 1e3, m: 1e6, g: 1e9 }[bits[2].toLowerCase()]!;
    return (Number(bits[1]) * mult) / 8;
  }
  const bytes = /^(\d+(?:\.\d+)?(?:e\d+)?)\s*([a-z]*)(\/s)?$/i.exec(t);
  const unit = bytes ? SIZE[bytes[2].toLowerCase()] : undefined;
  if (!bytes || unit === undefined)
    throw new UsageError(`${what}: cannot read rate '${text}' (examples: 1Gbit, 100Mbit, 100MiB/s, 125MB/s)`);
  const v = Number(bytes[1]) * unit;
  if (!(v > 0)) throw new UsageError(`${what}: rate must be > 0, got '${text}'`);
  return v;
}

/** Seconds from "300ms", "2s", "0.5" (seconds). */
export function parseDuration(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|us)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`${what}: cannot read duration '${text}' (examples: 300ms, 2s)`);
  const v = Number(m[1]);
  return m[2]?.toLowerCase() === "ms" ? v / 1000 : m[2]?.toLowerCase() === "us" ? v / 1e6 : v;
}

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
