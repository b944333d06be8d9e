import type { DirtyBitmap } from "../../kernel/dirty-bitmap.js";
import type { SelectionContext } from "../types.js";
import { SelectionPolicyBase } from "./base.js";

/**
 * Xen's `to_skip`: before each batch of a round, peek at the live dirty log; a candidate
 * already dirtied again since the round's harvest would only be resent next round, so it
 * is skipped (deferred) now (`choose` applies the peek taken as the round starts,
 * `recheck` the one before each batch). The first round (full pass) and the last round
 * (stop-and-copy) skip nothing. Without a peek (`ctx.redirtied` absent) it is vanilla.
 * // see: Xen tools/libxc/xc_domain_save.c (to_skip bitmap); Clark et al. 2005
 */
export class XenToSkipSelection extends SelectionPolicyBase {
  static readonly policyName = "xen-to-skip";
  static readonly description =
    "skip pages re-dirtied since the round's harvest (peek before each batch), except first and last rounds";
  readonly name = XenToSkipSelection.policyName;

  /** to_skip is peeked again before each batch, as Xen does. */
  recheck(batch: Uint32Array, redirtied: DirtyBitmap): Uint32Array {
    return this.withoutRedirtied(batch, redirtied);
  }

  protected choose(ctx: SelectionContext, send: DirtyBitmap): void {
    send.copyFrom(ctx.dirty);
    if (!ctx.firstRound && ctx.redirtied) send.andNot(ctx.redirtied);
  }
}
