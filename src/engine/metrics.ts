// The source's report accounting: per-batch counters into the report's ram figures, one
// round row per round, and the totals at the end.
import type { EncodeCounts, EncodePipeline } from "../codec/encode-pipeline.js";
import { PAGE_SIZE } from "../kernel/kernel.js";
import type { MigrationReport, RoundRow } from "./report.js";

/** Adds one batch's outcome to the report's ram counters (QEMU names where they exist). */
export function addBatchCounts(report: MigrationReport, c: EncodeCounts): void {
  const r = report.ram;
  r.duplicate += c.zero;
  r.normal += c.raw;
  r["normal-bytes"] = r.normal * PAGE_SIZE;
  r["skipped-unchanged"] += c.skipped;
  r["dedup-pages"] += c.dedup;
  r["rle-pages"] += c.rle;
  r["xbzrle-pages"] += c.xbzrle;
  r["pages-sent"] += c.zero + c.raw + c.xbzrle + c.rle + c.dedup;
}

/** Adds `from` into `into`, field by field. */
export function addCounts(into: EncodeCounts, from: EncodeCounts): void {
  for (const key of Object.keys(from) as Array<keyof EncodeCounts>) into[key] += from[key];
}

/** A round's row: what the round was asked to send and what its records turned out to be. */
export function roundRow(
  round: { round: number; phase: string; dirtied: number; sent: number; deferred: number },
  counts: EncodeCounts,
  bytes: number,
  seconds: number,
): RoundRow {
  return {
    ...round, skipped: counts.skipped,
    zero: counts.zero, raw: counts.raw, xbzrle: counts.xbzrle, rle: counts.rle, dedup: counts.dedup,
    bytes, seconds,
  };
}

/** The report's totals once the migration committed. */
export function finishReport(report: MigrationReport, bytesSent: number, seconds: number, pipeline: EncodePipeline): void {
  const r = report.ram;
  r.transferred = bytesSent;
  r.mbps = seconds > 0 ? (r.transferred * 8) / seconds / 1e6 : 0;
  pipeline.finish();
  report["xbzrle-cache"] = pipeline.stats();
  report.dedup = pipeline.dedupStats();
}
