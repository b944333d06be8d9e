// Plain-text tables for terminals: every cell of a column padded to one width, so that
// columns line up whatever the values; an optional second header line gives the units.

export interface TextColumn {
  head: string;
  /** Shown under the head ("ms", "MiB/s", "pages"); omitted when no column has one. */
  unit?: string;
  /** Numbers read best right-aligned (the default); names left-aligned. */
  align?: "left" | "right";
}

const GAP = "  ";

/** Lines of an aligned table: head, units (when any), then one line per row. */
export function textTable(columns: readonly TextColumn[], rows: ReadonlyArray<readonly string[]>): string[] {
  const units = columns.some((c) => c.unit) ? columns.map((c) => c.unit ?? "") : null;
  const all = [columns.map((c) => c.head), ...(units ? [units] : []), ...rows];
  const width = columns.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  return all.map((r) =>
    columns
      .map((c, i) => (c.align === "left" ? (r[i] ?? "").padEnd(width[i]) : (r[i] ?? "").padStart(width[i])))
      .join(GAP),
  );
}

/** `x` with at most `decimals` decimals, trailing zeros kept so a column reads evenly. */
export function fixed(x: number, decimals: number): string {
  if (!Number.isFinite(x)) return String(x);
  const s = x.toFixed(decimals);
  return s === `-${(0).toFixed(decimals)}` ? s.slice(1) : s; // no "-0.0"
}

/** A figure with about 3 significant digits and never more than 3 decimals: 858, 46.1, 1.25, 0.004. */
export function short(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (Number.isInteger(x) || a >= 100) return String(Math.round(x));
  if (a >= 10) return String(+x.toFixed(1));
  if (a >= 1) return String(+x.toFixed(2));
  return String(+x.toFixed(3));
}

/** Bytes with a binary unit: "512 B", "4.0 KiB", "339.8 MiB", "1.00 GiB". */
export function bytesText(n: number): string {
  const a = Math.abs(n);
  if (a >= 2 ** 30) return `${fixed(n / 2 ** 30, 2)} GiB`;
  if (a >= 2 ** 20) return `${fixed(n / 2 ** 20, 1)} MiB`;
  if (a >= 2 ** 10) return `${fixed(n / 2 ** 10, 1)} KiB`;
  return `${Math.round(n)} B`;
}

/** Bytes per second with a binary unit: "119.1 MiB/s". */
export function rateText(bytesPerSecond: number): string {
  return `${bytesText(bytesPerSecond)}/s`;
}
