// The numbers shown while a migration runs (QEMU's `info migrate` while active): what the
// demo sees pass its source transport tap and its dirty-log wrapper, so they move from the
// first frame on instead of appearing at the end with the report.

export interface LiveSnapshot {
  elapsedMs: number;
  /** Frame bytes put on the link so far. */
  transferred: number;
  /** Page records sent so far. */
  pagesSent: number;
  /** The pre-copy round on the wire (or the last one). */
  round: number;
  /** Link throughput over about the last second, bytes/s. */
  rate: number;
  /** Bytes still to send: pages not yet sent or dirty again (post-copy: missing at the destination). */
  remaining: number;
  /** What stopping now would cost: remaining ÷ rate, ms (QEMU's expected-downtime). */
  expectedDowntimeMs: number;
  /** Pages the guest dirtied per second (distinct pages: since the last harvest, or over the last round). */
  dirtyPagesRate: number;
}

/** Seconds of frames the rate is measured over. */
const RATE_WINDOW = 1;

export class LiveTotals {
  transferred = 0;
  pagesSent = 0;
  round = 0;
  dirtyPagesRate = 0;
  /** (seconds, transferred) samples of the last RATE_WINDOW. */
  #samples: Array<[number, number]> = [];
  #lastHarvest: number | null = null;

  constructor(private readonly now: () => number) {}

  /** A frame of `bytes` (carrying `pages` page records) went on the link. */
  sent(bytes: number, pages: number): void {
    this.transferred += bytes;
    this.pagesSent += pages;
    const t = this.now();
    this.#samples.push([t, this.transferred]);
    // keep one sample at least RATE_WINDOW old: the rate's baseline
    while (this.#samples.length > 2 && this.#samples[1][0] <= t - RATE_WINDOW) this.#samples.shift();
  }

  /** The dirty log was harvested and reported `pages` dirty since the previous harvest. */
  harvested(pages: number): void {
    const t = this.now();
    if (this.#lastHarvest !== null && t > this.#lastHarvest) this.dirtyPagesRate = pages / (t - this.#lastHarvest);
    this.#lastHarvest = t;
  }

  /**
   * A look at the live log found `pages` dirty since the last harvest: between harvests the
   * rate is that count over the time since (once a quarter second has passed).
   */
  peeked(pages: number): void {
    const t = this.now();
    if (this.#lastHarvest !== null && t - this.#lastHarvest >= 0.25)
      this.dirtyPagesRate = pages / (t - this.#lastHarvest);
  }

  /** Logging starts with this harvest (the counts before it are not a rate). */
  resetHarvestClock(): void {
    this.#lastHarvest = this.now();
  }

  /** Bytes/s from the baseline sample (about a second ago) to now (0 before two frames); an idle link slows it. */
  get rate(): number {
    const s = this.#samples;
    if (s.length < 2) return 0;
    const [t0, b0] = s[0];
    const span = this.now() - t0;
    return span > 0 ? (this.transferred - b0) / span : 0;
  }

  snapshot(elapsedMs: number, remainingPages: number, pageSize: number): LiveSnapshot {
    const rate = this.rate;
    const remaining = remainingPages * pageSize;
    return {
      elapsedMs,
      transferred: this.transferred,
      pagesSent: this.pagesSent,
      round: this.round,
      rate,
      remaining,
      expectedDowntimeMs: rate > 0 ? (remaining / rate) * 1000 : 0,
      dirtyPagesRate: this.dirtyPagesRate,
    };
  }
}
