import type { DirtyBitmap } from "../../kernel/dirty-bitmap.js";
import type { SelectionContext } from "../types.js";
import { SelectionPolicyBase } from "./base.js";

/**
 * DPDT (dirty page delayed transfer, `to_delay`): a page dirtied in both the previous
 * and the current round (the two latest harvests) is a frequently written page; it joins
 * the `to_delay` set and from then on is deferred every round until the last round
 * (stop-and-copy), which sends it once. Other candidates are sent.
 * // see: Chen et al., DPDT: the `to_delay` rule (delay pages dirty in two consecutive
 * //      rounds to the last iteration), as this project specifies it
 */
export class DpdtSelection extends SelectionPolicyBase {
  static readonly policyName = "dpdt";
  static readonly description = "pages dirty in the previous and current round are delayed to the last round";
  readonly name = DpdtSelection.policyName;
  #delayed = false;

  protected choose(ctx: SelectionContext, send: DirtyBitmap): void {
    const toDelay = this.scratch(ctx, 0);
    if (!this.#delayed) {
      toDelay.clearAll();
      this.#delayed = true;
    }
    if (!ctx.firstRound) {
      const both = this.scratch(ctx, 1)
        .copyFrom(ctx.dirty)
        .and(ctx.history.roundBitmap(0))
        .and(ctx.history.roundBitmap(1));
      toDelay.or(both);
    }
    send.copyFrom(ctx.dirty).andNot(toDelay);
  }

  protected override onLastRound(): void {
    this.#delayed = false;
  }

  override reset(): void {
    this.#delayed = false;
  }
}
