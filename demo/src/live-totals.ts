// The numbers shown while a migration runs (QEMU's `info migrate` while active): the
// engine's `progress` events (bytes and pages sent, round, remaining, expected downtime,
// dirty rate), plus two things only the page can see: the link's rate over the last seconds
// (frames passing the source transport tap) and, before the first harvest, the dirty rate
// a peek at the live log shows.
import type { MigrationProgress } from "../../src/engine/migration-events.js";

export interface LiveSnapshot extends MigrationProgress {
  /** Link throughput over about the last two seconds, bytes/s. */
  rate: number;
  /** Pages dirtied per second: the engine's (over harvests) once it has one, else the live log's. */
  dirtyRate: number;
  /** True while `dirtyRate` is the live log's estimate (no harvest yet). */
  dirtyRateEstimated: boolean;
}

/** Seconds of frames the rate is measured over (frames leave in bursts as the rate limit allows). */
const RATE_WINDOW = 2;

export class LiveTotals {
  /** The engine's latest progress event. */
  progress: MigrationProgress | null = null;
  #transferred = 0;
  /** (seconds, bytes so far) samples; the first is at least RATE_WINDOW old: the baseline. */
  #samples: Array<[number, number]> = [];
  #liveDirtyRate = 0;

  constructor(private readonly now: () => number) {}

  /** A frame of `bytes` went on the link. */
  sent(bytes: number): void {
    this.#transferred += bytes;
    const t = this.now();
    this.#samples.push([t, this.#transferred]);
    while (this.#samples.length > 2 && this.#samples[1][0] <= t - RATE_WINDOW) this.#samples.shift();
  }

  /** Bytes/s from the baseline sample to now (0 before two frames); an idle link slows it. */
  get rate(): number {
    const s = this.#samples;
    if (s.length < 2) return 0;
    const [t0, b0] = s[0];
    const span = this.now() - t0;
    return span > 0 ? (this.#transferred - b0) / span : 0;
  }

  /** A look at the live log found `pages` dirty over the `seconds` since the log started or was harvested. */
  peeked(pages: number, seconds: number): void {
    if (seconds >= 0.25) this.#liveDirtyRate = pages / seconds;
  }

  /**
   * The totals now. `remaining` overrides the engine's (post-copy: what the destination
   * still misses); `elapsedMs` is the page's own clock until the first event.
   */
  snapshot(elapsedMs: number, total: number, remaining?: number): LiveSnapshot {
    const p: MigrationProgress = this.progress ?? {
      phase: "setup",
      round: 0,
      elapsedMs,
      transferred: 0,
      total,
      remaining: total,
      pagesSent: 0,
      mbps: 0,
      dirtyPagesRate: 0,
      expectedDowntimeMs: 0,
    };
    const estimated = p.dirtyPagesRate === 0 && this.#liveDirtyRate > 0;
    return {
      ...p,
      ...(remaining !== undefined ? { remaining, expectedDowntimeMs: 0 } : {}),
      rate: this.rate,
      dirtyRate: estimated ? this.#liveDirtyRate : p.dirtyPagesRate,
      dirtyRateEstimated: estimated,
    };
  }
}
