import type { DirtyBitmap } from "../../kernel/dirty-bitmap.js";
import type { SelectionContext } from "../types.js";
import { SelectionPolicyBase } from "./base.js";

/**
 * Reuse distance: a candidate is sent when its reuse distance (distinct pages dirtied
 * between its last two dirtyings) is at least the number of pages dirtied in the
 * previous round (the latest harvest) — it is then unlikely to be rewritten before the
 * round ends — and it is not in Xen's to_skip (already re-dirtied this round, when a
 * peek is given; peeked again before each batch). Pages dirtied only once so far count as infinitely far. Other
 * candidates are deferred. First and last rounds send everything. Needs the history's
 * reuse-distance tracker.
 * // see: Alamdari & Zamanifar 2012, "A reuse distance based precopy approach to improve live migration of virtual machines"
 */
export class ReuseDistanceSelection extends SelectionPolicyBase {
  static readonly policyName = "reuse-distance";
  static readonly description = "send if reuse distance ≥ the previous round's dirty count and not in to_skip";
  readonly name = ReuseDistanceSelection.policyName;

  /** to_skip is peeked again before each batch, as Xen does. */
  recheck(batch: Uint32Array, redirtied: DirtyBitmap): Uint32Array {
    return this.withoutRedirtied(batch, redirtied);
  }

  protected choose(ctx: SelectionContext, send: DirtyBitmap): void {
    if (ctx.firstRound) {
      send.copyFrom(ctx.dirty);
      return;
    }
    const threshold = ctx.history.roundBitmap(0).count();
    ctx.history.selectReuseDistanceAtLeast(ctx.dirty, threshold, send);
    if (ctx.redirtied) send.andNot(ctx.redirtied);
  }
}
