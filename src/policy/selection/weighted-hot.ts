import type { DirtyBitmap } from "../../kernel/dirty-bitmap.js";
import type { SelectionContext } from "../types.js";
import { SelectionPolicyBase } from "./base.js";

export interface WeightedHotOptions {
  /** Weight of "dirtied k rounds ago", k = 0..7 (default 1/2, 1/4, … 1/256). */
  weights?: readonly number[];
  /** Weighted rate at or above which a page is hot and deferred (default 0.7). */
  threshold?: number;
}

/**
 * Weighted hot pages: a page's weighted historical dirty rate is Σ w_k · dirtied(k
 * rounds ago) over the last 8 rounds, with weights halving with age (1/2, 1/4, …), so
 * recent behaviour counts most. Candidates at or above 0.7 — e.g. dirty in both latest
 * rounds — are hot: they will very likely be rewritten, so they are deferred; the
 * others are sent. First and last rounds send everything.
 * // see: Zhong 2014, weighted historical dirty-rate prediction for pre-copy migration
 */
export class WeightedHotSelection extends SelectionPolicyBase {
  static readonly policyName = "weighted-hot";
  static readonly description = "defer pages whose age-weighted dirty rate over 8 rounds is ≥ 0.7";
  readonly name = WeightedHotSelection.policyName;
  readonly weights: readonly number[];
  readonly threshold: number;

  constructor(options: WeightedHotOptions = {}) {
    super();
    this.weights = options.weights ?? Array.from({ length: 8 }, (_, k) => 2 ** -(k + 1));
    this.threshold = options.threshold ?? 0.7;
  }

  protected choose(ctx: SelectionContext, send: DirtyBitmap): void {
    send.copyFrom(ctx.dirty);
    if (ctx.firstRound) return;
    const hot = this.scratch(ctx, 0);
    ctx.history.selectWeightedRateAtLeast(ctx.dirty, this.weights, this.threshold, hot);
    send.andNot(hot);
  }
}
