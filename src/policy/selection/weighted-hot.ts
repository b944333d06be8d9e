import type { DirtyBitmap } from "../../kernel/dirty-bitmap.js";
import type { SelectionContext } from "../types.js";
import { SelectionPolicyBase } from "./base.js";

// Every number below is this project's: the paper's sampling interval, weights, thresholds
// and adaptation rule are not known to us, so each is an option.
export interface WeightedHotOptions {
  /** Sampling interval, ms (default 1000: the engine's minimum round period). */
  intervalMs?: number;
  /** Starting hot threshold on the weighted rate, 0..1 (default 0.7: dirty in the two latest samples). */
  hot?: number;
  /** Warm threshold as a share of the hot one (default 0.5). */
  warmRatio?: number;
  /** Threshold step of each adaptation, as a share of the threshold (default 0.1). */
  step?: number;
  /** Share of wrong predictions of the previous round above which the threshold moves (default 0.5). */
  maxMisprediction?: number;
}

/**
 * Weighted hot pages. The dirty history is sampled on a fixed time grid counted from the
 * start of the migration: a page's weighted dirty-page rate is Σ 2^−(k+1) over the
 * samples it was dirty in, k = that sample's age in intervals (the engine reads the log at
 * each round's sync, so a page dirty in a round counts at the sync's time and ages with
 * the clock, not with the round count). It is 1 for a page dirty in every sample.
 *
 * Classes: free and read-only pages go once, in the first iteration (free ones as zero
 * records by the codec), and never become candidates again; of the written candidates, a
 * rate ≥ hot marks a hot-written page, deferred (sent in the last iteration unless it
 * cools); ≥ warm a warm page, sent after the other written pages; the rest are sent first.
 *
 * Adaptive thresholds: each round checks the previous round's prediction against the
 * harvest that followed: when more than half the pages it sent were rewritten the
 * thresholds go down a step (defer more); when more than half the hot pages were not
 * rewritten they go up a step (defer less).
 * // see: Zhong 2014, weighted historical dirty-rate prediction for pre-copy migration
 */
export class WeightedHotSelection extends SelectionPolicyBase {
  static readonly policyName = "weighted-hot";
  static readonly description =
    "weighted dirty rate over fixed-interval samples: hot-written deferred, warm sent last, written first; thresholds adapt to mispredictions";
  readonly name = WeightedHotSelection.policyName;
  readonly intervalSeconds: number;
  readonly warmRatio: number;
  readonly step: number;
  readonly maxMisprediction: number;
  readonly initialHot: number;
  #hot: number;
  /** Seconds since the start of the migration at the latest harvest. */
  #now = 0;
  /** Weighted rate per page at its stamp, and the stamp (seconds). */
  #rate = new Float32Array(0);
  #stamp = new Float32Array(0);

  constructor(options: WeightedHotOptions = {}) {
    super();
    this.intervalSeconds = Math.max(1e-3, (options.intervalMs ?? 1000) / 1000);
    this.initialHot = options.hot ?? 0.7;
    this.#hot = this.initialHot;
    this.warmRatio = options.warmRatio ?? 0.5;
    this.step = options.step ?? 0.1;
    this.maxMisprediction = options.maxMisprediction ?? 0.5;
  }

  /** The current hot threshold (adapted). */
  get hotThreshold(): number {
    return this.#hot;
  }

  /** Weighted dirty rate of `page` at the latest harvest. */
  rate(page: number): number {
    const r = this.#rate[page] ?? 0;
    return r * 2 ** -((this.#now - this.#stamp[page]) / this.intervalSeconds);
  }

  protected choose(ctx: SelectionContext, send: DirtyBitmap) {
    const n = ctx.dirty.pageCount;
    const sentBefore = this.scratch(ctx, 0);
    const hotBefore = this.scratch(ctx, 1);
    if (ctx.firstRound || this.#rate.length !== n) {
      this.#rate = new Float32Array(n);
      this.#stamp = new Float32Array(n);
      this.#now = 0;
      this.#hot = this.initialHot;
      hotBefore.clearAll();
    }
    if (ctx.firstRound) {
      send.copyFrom(ctx.dirty);
      sentBefore.clearAll(); // the full pass predicts nothing
      return;
    }
    this.#now += ctx.previousRoundSeconds ?? this.intervalSeconds;
    const latest = ctx.history.roundBitmap(0);
    for (const p of latest.collect()) {
      this.#rate[p] = this.rate(p) + 0.5;
      this.#stamp[p] = this.#now;
    }
    const note = this.#adapt(latest, sentBefore, hotBefore, this.scratch(ctx, 2));
    const warm = this.#hot * this.warmRatio;
    const written: number[] = [],
      warmPages: number[] = [];
    send.clearAll();
    hotBefore.clearAll();
    for (const p of ctx.dirty.collect()) {
      const r = this.rate(p);
      if (r >= this.#hot) hotBefore.set(p);
      else {
        send.set(p);
        (r >= warm ? warmPages : written).push(p);
      }
    }
    sentBefore.copyFrom(send);
    return { order: Uint32Array.from([...written, ...warmPages]), note };
  }

  /** Moves the thresholds by the previous round's mispredictions; returns a note when they moved. */
  #adapt(latest: DirtyBitmap, sent: DirtyBitmap, hot: DirtyBitmap, tmp: DirtyBitmap): string | undefined {
    const sentCount = sent.count(),
      hotCount = hot.count();
    const rewritten = sentCount ? tmp.copyFrom(sent).and(latest).count() / sentCount : 0;
    const cooled = hotCount ? tmp.copyFrom(hot).andNot(latest).count() / hotCount : 0;
    const before = this.#hot;
    if (rewritten > this.maxMisprediction) this.#hot *= 1 - this.step;
    else if (cooled > this.maxMisprediction) this.#hot = Math.min(1, this.#hot * (1 + this.step));
    return this.#hot !== before ? `hot threshold ${before.toFixed(3)} → ${this.#hot.toFixed(3)}` : undefined;
  }

  override reset(): void {
    this.#rate = new Float32Array(0);
    this.#hot = this.initialHot;
  }
}
