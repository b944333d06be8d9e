import type { DirtyBitmap } from "../../kernel/dirty-bitmap.js";
import type { SelectionContext } from "../types.js";
import { SelectionPolicyBase } from "./base.js";

export interface HistoryThresholdOptions {
  /** Rounds a page must have stayed clean (default 3). */
  cleanRounds?: number;
}

/**
 * History threshold: the first round sends the pages not modified during it (given a
 * peek at the live log; all pages without one) and defers the modified ones. Later
 * rounds send a candidate when its dirty count is below the average dirty count of the
 * round's candidates and it was not modified in the last 3 rounds (none of the three
 * latest harvests); the rest is deferred, and the last round sends it.
 * // see: Bhatia & Singh 2018, history-based page selection for pre-copy live migration
 */
export class HistoryThresholdSelection extends SelectionPolicyBase {
  static readonly policyName = "history-threshold";
  static readonly description =
    "send pages below the average dirty count and clean for the last 3 rounds; the last round sends the rest";
  readonly name = HistoryThresholdSelection.policyName;
  readonly cleanRounds: number;

  constructor(options: HistoryThresholdOptions = {}) {
    super();
    this.cleanRounds = Math.min(8, Math.max(1, options.cleanRounds ?? 3));
  }

  protected choose(ctx: SelectionContext, send: DirtyBitmap) {
    if (ctx.firstRound) {
      send.copyFrom(ctx.dirty);
      if (ctx.redirtied) send.andNot(ctx.redirtied);
      return;
    }
    const { sum, pages } = ctx.history.sumDirtyCounts(ctx.dirty);
    const average = pages ? sum / pages : 0;
    ctx.history.selectDirtyCountBelow(ctx.dirty, average, send);
    for (let k = 0; k < this.cleanRounds; k++) send.andNot(ctx.history.roundBitmap(k));
    return { note: `average dirty count ${average.toFixed(2)}` };
  }
}
