// The source's live state while it runs: which phase and round, what is still to send, the
// rates. It keeps the report's QEMU-named fields current (ram.transferred, ram.remaining,
// ram.mbps, expected-downtime, dirty-pages-rate, total-time) and emits `progress` events at
// a bounded rate (every page batch and data-channel report asks; at most one per interval).
import { PAGE_SIZE } from "../kernel/kernel.js";
import type { Clock } from "../util/clock.js";
import type { EventHub, MigrationPhase, MigrationProgress, SourceEvents } from "./migration-events.js";
import type { MigrationReport, RoundRow } from "./report.js";

export interface SourceProgressOptions {
  clock: Clock;
  report: MigrationReport;
  events: EventHub<SourceEvents>;
  /** Frame bytes sent so far on every connection and data channel. */
  bytesSent: () => number;
  /** The bandwidth limit, bytes/s (Infinity: none). */
  rateLimit: () => number;
  /** Milliseconds between two progress events (default 250). */
  intervalMs?: number;
}

export class SourceProgress {
  readonly #o: SourceProgressOptions;
  readonly #start: number;
  #phase: MigrationPhase = "setup";
  #round = 0;
  #remainingPages = 0;
  /** Pages of the current round encoded so far (sent or skipped). */
  #roundDone = 0;
  #roundBase = 0;
  #dirtied = 0;
  #dirtyFrom: number | null = null;
  /** The last round's throughput, bytes/s (0: none measured yet). */
  #bandwidth = 0;
  #lastEmit = -Infinity;

  constructor(o: SourceProgressOptions) {
    this.#o = o;
    this.#start = o.clock.now();
  }

  /** A round (or the stop-and-copy / post-copy phase) starts with `pages` to send and `pending` still to send in all. */
  beginRound(round: number, phase: MigrationPhase, pages: number, pending: number): void {
    this.#phase = phase;
    this.#round = round;
    this.#roundBase = pending;
    this.#roundDone = 0;
    this.#remainingPages = pending;
    this.#o.events.emit("round-start", { round, phase, pages });
    this.tick(true);
  }

  /** `pages` more pages of the current round are encoded (live count from this thread). */
  pagesDone(pages: number): void {
    this.setRoundDone(this.#roundDone + pages);
  }

  /** The current round has encoded `pages` in all (data channels report totals). */
  setRoundDone(pages: number): void {
    this.#roundDone = pages;
    this.#remainingPages = Math.max(0, this.#roundBase - pages);
    this.tick();
  }

  /** A round's row is in the report. */
  endRound(row: RoundRow): void {
    this.#remainingPages = row.deferred;
    if (row.seconds > 0 && row.bytes > 0) this.#bandwidth = Math.min(row.bytes / row.seconds, this.#o.rateLimit());
    this.#o.events.emit("round-end", { row });
    this.tick(true);
  }

  /** A harvest of the dirty log found `pages` dirty. */
  harvested(pages: number): void {
    this.#dirtyFrom ??= this.#start;
    this.#dirtied += pages;
    this.#remainingPages += pages;
  }

  /** The dirty log started (the dirty rate counts from here). */
  logStarted(): void {
    this.#dirtyFrom = this.#o.clock.now();
  }

  phase(phase: MigrationPhase): void {
    this.#phase = phase;
    this.tick(true);
  }

  /** The migration ended: the report's totals are final (set by finishReport); one last event. */
  finish(phase: MigrationPhase): void {
    this.#phase = phase;
    if (phase === "done") this.#remainingPages = 0;
    this.tick(true);
  }

  /** Updates the report's live fields; emits a progress event when the interval has passed (or `force`). */
  tick(force = false): void {
    const now = this.#o.clock.now();
    const due = force || (now - this.#lastEmit) * 1000 >= (this.#o.intervalMs ?? 250);
    if (!due) return;
    this.#lastEmit = now;
    const p = this.snapshot(now);
    const r = this.#o.report;
    if (this.#phase !== "done") {
      r.ram.transferred = p.transferred;
      r.ram.mbps = p.mbps;
      r.totalTime = p.elapsedMs;
    }
    r.ram.remaining = p.remaining;
    r.expectedDowntime = p.expectedDowntimeMs;
    if (this.#dirtied) r.ram["dirty-pages-rate"] = p.dirtyPagesRate;
    this.#o.events.emit("progress", { progress: p });
  }

  /** The migration as it stands now. */
  snapshot(now = this.#o.clock.now()): MigrationProgress {
    const r = this.#o.report;
    const done = this.#phase === "done";
    const elapsed = done ? r.totalTime / 1000 : now - this.#start;
    const transferred = done ? r.ram.transferred : this.#o.bytesSent();
    const remaining = this.#remainingPages * PAGE_SIZE;
    const limit = this.#o.rateLimit();
    const average = elapsed > 0 ? transferred / elapsed : 0;
    const bandwidth = this.#bandwidth || (Number.isFinite(limit) ? limit : average);
    const dirtySeconds = this.#dirtyFrom === null ? 0 : now - this.#dirtyFrom;
    return {
      phase: this.#phase,
      round: this.#round,
      elapsedMs: round3(elapsed * 1000),
      transferred,
      total: r.ram.total,
      remaining,
      pagesSent: r.ram["pages-sent"],
      mbps: round3(elapsed > 0 ? (transferred * 8) / elapsed / 1e6 : 0),
      dirtyPagesRate: dirtySeconds > 0 ? Math.round(this.#dirtied / dirtySeconds) : 0,
      expectedDowntimeMs: bandwidth > 0 ? round3((remaining / bandwidth) * 1000) : 0,
    };
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
