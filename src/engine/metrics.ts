// The source's report accounting: one round row per round, and the totals at the end
// (per-batch counters go through MigrationReport.addBatchCounts).
import type { EncodeCounts } from "../codec/codecs.js";
import type { EncodePipeline } from "../codec/encode-pipeline.js";
import type { MigrationReport, RoundRow } from "./report.js";

/** A round's row: what the round was asked to send and what its records turned out to be. */
export function roundRow(
  round: { round: number; phase: string; dirtied: number; sent: number; deferred: number },
  counts: EncodeCounts,
  bytes: number,
  seconds: number,
): RoundRow {
  return { ...round, ...counts, bytes, seconds };
}

/** The report's totals once the migration committed. */
export function finishReport(
  report: MigrationReport,
  bytesSent: number,
  seconds: number,
  pipeline: EncodePipeline,
): void {
  const r = report.ram;
  r.transferred = bytesSent;
  r.mbps = seconds > 0 ? (r.transferred * 8) / seconds / 1e6 : 0;
  pipeline.finish();
  report["xbzrle-cache"] = pipeline.stats();
  report.dedup = pipeline.dedupStats();
}
