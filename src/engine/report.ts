import { PAGE_SIZE } from "../kernel/abi.js";
import { reportText } from "./report-text.js";
import {
  addCodecCounters,
  countRecords,
  COUNT_COLUMNS,
  emptyCodecCounters,
  type EncodeCounts,
} from "../codec/codecs.js";

/**
 * One pre-copy round (or the stop-and-copy / post-copy phase) as the report shows it; the
 * page counts by encoding are the codec table's columns (codec/codecs.ts): skipped (content
 * unchanged since last sent, fake dirty), then sent pages by record kind.
 */
export interface RoundRow extends EncodeCounts {
  round: number;
  /** "precopy" | "stop-and-copy" | "postcopy" */
  phase: string;
  /** Pages found dirty at the start of the round (round 0: every page). */
  dirtied: number;
  /** Pages sent this round (any encoding). */
  sent: number;
  /** Dirty pages not sent because the selection policy deferred them. */
  deferred: number;
  /** Frame bytes put on the transport this round. */
  bytes: number;
  seconds: number;
}

/** The round table's columns, in order. */
export const ROUND_COLUMNS: ReadonlyArray<keyof RoundRow> = [
  "round",
  "phase",
  "dirtied",
  "sent",
  "deferred",
  ...COUNT_COLUMNS,
  "bytes",
  "seconds",
];

/** completed: the destination runs; aborted: the source runs again; in-doubt: neither, until resolved. */
export type MigrationStatus = "completed" | "aborted" | "in-doubt";

/** Inputs and outcome of a policy decision worth showing (termination, throttle, auto mode …). */
export interface PolicyDecision {
  round: number;
  kind: string;
  decision: string;
  inputs?: Record<string, number | string | boolean>;
  /** Set on the decision that ended pre-copy: what the report's stoppedBy says. */
  stoppedBy?: string;
}

/** What ends a migration that has no pre-copy rounds to stop. */
const STOPPED_BY_MODE: Record<string, string> = {
  "stop-and-copy": "stop-and-copy mode",
  postcopy: "post-copy mode",
};

/**
 * What a migration did, with QEMU's `query-migrate` names where one exists: times in
 * milliseconds, sizes in bytes, rates in Mbit/s (mbps) and pages/s (dirty-pages-rate).
 */
export class MigrationReport {
  status: MigrationStatus = "completed";
  mode = "precopy";
  error?: { code: string; message: string };
  #stoppedBy = "";
  /** Milliseconds from start to the destination's commit acknowledgement. */
  totalTime = 0;
  /** Milliseconds the guest was paused: from onPause to the commit acknowledgement (or to the post-copy switch). */
  downtime = 0;
  /** Milliseconds spent in the handshake before the first page. */
  setupTime = 0;
  /** While running: what stopping now would cost, ms (remaining ÷ the last round's bandwidth; QEMU's expected-downtime). */
  expectedDowntime = 0;
  pageSize = PAGE_SIZE;
  /** Data channels the pages of the rounds went on (0: on the control connection, in this thread). */
  channels = 0;
  ram = {
    /** Bytes of frames sent (all pages, records and control frames). */
    transferred: 0,
    /** Guest RAM size in bytes. */
    total: 0,
    /**
     * Pages by codec (codec/codecs.ts): skipped-unchanged (content unchanged since last
     * sent), duplicate (zero pages), dedup-pages (references to content the destination
     * held), xbzrle-pages, rle-pages, lz-pages, normal (sent in full).
     */
    ...emptyCodecCounters(),
    "normal-bytes": 0,
    /** Dirty pages still to send when the report was made. */
    remaining: 0,
    "dirty-sync-count": 0,
    /** Average throughput, Mbit/s. */
    mbps: 0,
    /** Pages dirtied per second during pre-copy. */
    "dirty-pages-rate": 0,
    /** Page records sent in all. */
    "pages-sent": 0,
  };
  "xbzrle-cache": Record<string, number> = {};
  /** Dedup index counters (hits, misses, evictions, bytesSaved …), null when dedup was off. */
  dedup: Record<string, number> | null = null;
  "postcopy-requests" = 0;
  postcopy?: {
    "pages-requested": number;
    "pages-pushed": number;
    "fault-latency-p50-ms": number;
    "fault-latency-p99-ms": number;
  };
  /** Connections replaced after a loss (post-copy recovery, a commit delivered again), and the time spent without one. */
  recovery = { count: 0, "paused-ms": 0 };
  rounds: RoundRow[] = [];
  decisions: PolicyDecision[] = [];

  /**
   * What ended pre-copy and started the stop-and-copy (or the post-copy switch), in words:
   * "qemu rule" (the termination policy's target was met), "xen limit" (its cap), "round
   * cap" (maxRounds), "force-stop", "post-copy switch", "… after throttle to 40 %"; the
   * mode when it has no rounds ("stop-and-copy mode"); "" before the decision.
   */
  get stoppedBy(): string {
    const cause = this.#stoppedBy || STOPPED_BY_MODE[this.mode] || "";
    return this.mode === "hybrid" && cause && !cause.includes("post-copy") ? `${cause}, then post-copy` : cause;
  }

  set stoppedBy(cause: string) {
    this.#stoppedBy = cause;
  }

  /** Adds one encoded batch's counts to the ram counters. */
  addBatchCounts(counts: Readonly<EncodeCounts>): void {
    addCodecCounters(this.ram, counts);
    this.ram["normal-bytes"] = this.ram.normal * this.pageSize;
    this.ram["pages-sent"] += countRecords(counts);
  }

  toJSON(): Record<string, unknown> {
    return {
      status: this.status,
      mode: this.mode,
      ...(this.error ? { error: this.error } : {}),
      "stopped-by": this.stoppedBy,
      "total-time": round3(this.totalTime),
      downtime: round3(this.downtime),
      "setup-time": round3(this.setupTime),
      "expected-downtime": round3(this.expectedDowntime),
      "page-size": this.pageSize,
      channels: this.channels,
      ram: { ...this.ram, mbps: round3(this.ram.mbps), "dirty-pages-rate": Math.round(this.ram["dirty-pages-rate"]) },
      "xbzrle-cache": roundValues(this["xbzrle-cache"]),
      ...(this.dedup ? { dedup: roundValues(this.dedup) } : {}),
      "postcopy-requests": this["postcopy-requests"],
      ...(this.postcopy ? { postcopy: roundValues(this.postcopy) } : {}),
      ...(this.recovery.count
        ? { recovery: { ...this.recovery, "paused-ms": round3(this.recovery["paused-ms"]) } }
        : {}),
      rounds: this.rounds.map((r) => ({ ...r, seconds: round3(r.seconds) })),
      decisions: this.decisions.map((d) => (d.inputs ? { ...d, inputs: roundValues(d.inputs) } : d)),
    };
  }

  /** A QEMU-style summary with units, the per-round table and the decisions in words (report-text.ts). */
  toTable(): string {
    return reportText(this);
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Figures as JSON with at most 3 decimals (ratios such as cache-miss-rate are computed floats). */
function roundValues<T extends Record<string, unknown>>(figures: T): T {
  return Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, typeof v === "number" ? round3(v) : v])) as T;
}
