import { PAGE_SIZE } from "../kernel/abi.js";
import {
  addCodecCounters,
  CODECS,
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
}

/**
 * What a migration did, with QEMU's `query-migrate` names where one exists: times in
 * milliseconds, sizes in bytes, rates in Mbit/s (mbps) and pages/s (dirty-pages-rate).
 */
export class MigrationReport {
  status: MigrationStatus = "completed";
  mode = "precopy";
  error?: { code: string; message: string };
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
      "total-time": round3(this.totalTime),
      downtime: round3(this.downtime),
      "setup-time": round3(this.setupTime),
      "expected-downtime": round3(this.expectedDowntime),
      "page-size": this.pageSize,
      channels: this.channels,
      ram: { ...this.ram, mbps: round3(this.ram.mbps), "dirty-pages-rate": Math.round(this.ram["dirty-pages-rate"]) },
      "xbzrle-cache": this["xbzrle-cache"],
      ...(this.dedup ? { dedup: this.dedup } : {}),
      "postcopy-requests": this["postcopy-requests"],
      ...(this.postcopy ? { postcopy: this.postcopy } : {}),
      ...(this.recovery.count
        ? { recovery: { ...this.recovery, "paused-ms": round3(this.recovery["paused-ms"]) } }
        : {}),
      rounds: this.rounds.map((r) => ({ ...r, seconds: round3(r.seconds) })),
      decisions: this.decisions,
    };
  }

  /** A QEMU-style summary followed by the per-round table. */
  toTable(): string {
    const lines: string[] = [];
    const kv = (k: string, v: string | number) => lines.push(`${k.padEnd(22)} ${v}`);
    kv("status", this.status + (this.error ? ` (${this.error.code}: ${this.error.message})` : ""));
    kv("mode", this.mode);
    kv("total-time", `${round3(this.totalTime)} ms`);
    kv("downtime", `${round3(this.downtime)} ms`);
    kv("setup-time", `${round3(this.setupTime)} ms`);
    kv("transferred", `${this.ram.transferred} bytes (${(this.ram.transferred / 2 ** 20).toFixed(1)} MiB)`);
    kv("total", `${this.ram.total} bytes`);
    // a QEMU name that does not say the codec gets it in brackets: "duplicate (zero)"
    for (const c of CODECS)
      kv(c.counter.includes(c.name) ? c.counter : `${c.counter} (${c.name})`, this.ram[c.counter]);
    kv("dirty-sync-count", this.ram["dirty-sync-count"]);
    kv("mbps", round3(this.ram.mbps));
    kv("dirty-pages-rate", Math.round(this.ram["dirty-pages-rate"]));
    for (const [k, v] of Object.entries(this["xbzrle-cache"])) kv(`xbzrle-cache.${k}`, v);
    if (this.postcopy) {
      kv("postcopy-requests", this["postcopy-requests"]);
      for (const [k, v] of Object.entries(this.postcopy)) kv(`postcopy.${k}`, v);
    }
    if (this.recovery.count)
      kv(
        "recovery",
        `${this.recovery.count} reconnection(s), ${round3(this.recovery["paused-ms"])} ms without a connection`,
      );
    lines.push("");
    const cols = ROUND_COLUMNS;
    const rows = this.rounds.map((r) => cols.map((c) => (c === "seconds" ? r.seconds.toFixed(3) : String(r[c]))));
    const width = cols.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i].length)));
    lines.push(cols.map((c, i) => c.padStart(width[i])).join("  "));
    for (const r of rows) lines.push(r.map((x, i) => x.padStart(width[i])).join("  "));
    for (const d of this.decisions)
      lines.push(`decision round ${d.round} ${d.kind}: ${d.decision}${d.inputs ? " " + JSON.stringify(d.inputs) : ""}`);
    return lines.join("\n");
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
