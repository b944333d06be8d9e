import type { DirtyBitmap } from "../../kernel/dirty-bitmap.js";
import type { SelectionContext } from "../types.js";
import { SelectionPolicyBase } from "./base.js";

/**
 * DPDT (dirty page delayed transfer) over four bitmaps: `to_send` (the round's candidates:
 * the harvest that starts the iteration plus what was delayed), `to_skip` (pages dirtied
 * again since that harvest: the peek at the live log; empty without one), `to_delay` and
 * `to_fix` (what the last iteration sends: every page still pending, the engine's
 * stop-and-copy).
 *
 * - `to_delay` marks the pages modified both in the last iteration (in the harvest that
 *   starts this one) and at the start of the current one (in to_skip).
 * - Delayed pages are re-examined each iteration: one that went cold — in neither the
 *   latest harvest nor to_skip — leaves to_delay and is sent.
 * - Every other candidate is sent; what is still delayed goes in the last iteration.
 * // see: Chen et al., DPDT, as summarised by Bhatia & Singh (to_skip, to_send, to_fix, to_delay)
 */
export class DpdtSelection extends SelectionPolicyBase {
  static readonly policyName = "dpdt";
  static readonly description =
    "delay pages modified in the last iteration and again at the start of this one (to_skip); a delayed page that went cold is sent";
  readonly name = DpdtSelection.policyName;
  #toDelay: DirtyBitmap | null = null;

  /** to_skip is peeked again before each batch: a page of to_send found in it joins to_delay. */
  recheck(batch: Uint32Array, redirtied: DirtyBitmap): Uint32Array {
    const keep = this.withoutRedirtied(batch, redirtied);
    if (keep !== batch && this.#toDelay) for (const p of batch) if (redirtied.get(p)) this.#toDelay.set(p);
    return keep;
  }

  protected choose(ctx: SelectionContext, send: DirtyBitmap) {
    const toDelay = (this.#toDelay = this.scratch(ctx, 0));
    if (ctx.firstRound) {
      toDelay.clearAll();
      send.copyFrom(ctx.dirty);
      return;
    }
    const latest = ctx.history.roundBitmap(0);
    const toSkip = ctx.redirtied;
    // re-examine: a delayed page still hot (dirtied in the last iteration or now) stays delayed
    const stillHot = this.scratch(ctx, 1).copyFrom(latest);
    if (toSkip) stillHot.or(toSkip);
    const before = toDelay.count();
    toDelay.and(stillHot).and(ctx.dirty);
    const cooled = before - toDelay.count();
    if (toSkip) toDelay.or(this.scratch(ctx, 1).copyFrom(ctx.dirty).and(latest).and(toSkip));
    send.copyFrom(ctx.dirty).andNot(toDelay);
    return { note: cooled ? `${cooled} delayed pages went cold` : undefined };
  }

  override dispose(): void {
    this.#toDelay = null;
    super.dispose();
  }
}
