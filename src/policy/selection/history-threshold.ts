import type { DirtyBitmap } from "../../kernel/dirty-bitmap.js";
import type { SelectionContext } from "../types.js";
import { SelectionPolicyBase } from "./base.js";

export interface HistoryThresholdOptions {
  /** Iterations a candidate must have stayed unmodified to be sent (default 3, the paper's). */
  cleanRounds?: number;
}

/**
 * History threshold. `updation[p]` is the page history's dirty count: the harvests page p
 * was dirty in since the dirty log started — before the migration when the engine is given
 * a warm-up history (MigrationSourceOptions.history), else since the migration started
 * (saturating at 255). T = Σ updation / n over **all n pages** of the guest.
 *
 * - First iteration: if no candidate was modified (updation 0 for all), send all; if all
 *   were modified, send only those that pass the second-phase test; otherwise send only
 *   the unmodified ones and defer the rest.
 * - Second phase (the middle iterations): a candidate with `updation < T` is sent only if
 *   it was not modified in the last 3 iterations (none of the three latest harvests);
 *   every other candidate is deferred.
 * - Third phase: the last iteration (stop-and-copy) sends every remaining page.
 *
 * A candidate was dirtied at least once, so it can pass only once T > 1: pages must have
 * been modified more than once on average. "Since the VM started" therefore matters: the
 * simulator gives this policy a history by default (sim/warm-up.ts: the pages the boot
 * left non-zero count once, then 255 sync periods of the guest running).
 * // see: Bhatia & Singh 2018, history-based page selection for pre-copy live migration
 */
export class HistoryThresholdSelection extends SelectionPolicyBase {
  static readonly policyName = "history-threshold";
  static readonly description =
    "updation counted since the VM started (a history from before the migration); send pages with updation < T (mean over all pages) unmodified for 3 iterations; first iteration sends unmodified pages";
  /** updation counts from the VM's start: the policy wants a history from before the migration. */
  static readonly historySinceStart = true;
  readonly historySinceStart = true;
  readonly name = HistoryThresholdSelection.policyName;
  readonly cleanRounds: number;

  constructor(options: HistoryThresholdOptions = {}) {
    super();
    this.cleanRounds = Math.min(8, Math.max(1, Math.floor(options.cleanRounds ?? 3)));
  }

  protected choose(ctx: SelectionContext, send: DirtyBitmap) {
    const all = this.scratch(ctx, 0);
    all.clearAll();
    all.setRange(0, ctx.dirty.pageCount);
    const { sum } = ctx.history.sumDirtyCounts(all);
    const threshold = ctx.dirty.pageCount ? sum / ctx.dirty.pageCount : 0;
    if (ctx.firstRound) {
      const candidates = ctx.dirty.count();
      const unmodified = ctx.history.selectDirtyCountBelow(ctx.dirty, 1, send);
      if (unmodified === candidates) return { note: "first iteration: no page modified yet, all sent" };
      if (unmodified > 0) return { note: `first iteration: ${unmodified} unmodified pages sent` };
      // every candidate was modified: the second-phase test decides
    }
    this.#secondPhase(ctx, threshold, send);
    return { note: `T = ${threshold.toFixed(3)}` };
  }

  /** send = candidates with updation < T and clean in the last `cleanRounds` harvests. */
  #secondPhase(ctx: SelectionContext, threshold: number, send: DirtyBitmap): void {
    ctx.history.selectDirtyCountBelow(ctx.dirty, threshold, send);
    for (let k = 0; k < this.cleanRounds; k++) send.andNot(ctx.history.roundBitmap(k));
  }
}
