import type { DirtyBitmap } from "../../kernel/dirty-bitmap.js";
import type { SelectionContext } from "../types.js";
import { SelectionPolicyBase } from "./base.js";

export interface SecondChanceOptions {
  /** Iterations after which phase 2 takes over (default 28). */
  maxRounds?: number;
  /** Dirty pages left (candidates) under which phase 2 takes over (default 55). */
  minPages?: number;
  /** Duplicated (re-sent) pages, as a multiple of guest pages, above which phase 2 takes over (default 2.5). */
  maxSentFactor?: number;
}

/**
 * Second chance, with Xen's bitmaps: `to_send` = the round's candidates, `to_skip` = the
 * pages dirtied again since the harvest (the peek; empty without one).
 *
 * - Phase 1: a page with to_send = 1 and to_skip = 0 is sent only if it was not modified
 *   for 2 consecutive iterations (in neither of the two latest harvests); a page just
 *   dirtied gets a "second chance" to settle and is deferred. The first iteration sends
 *   every page.
 * - Switch, for good, to phase 2 after 28 iterations, when fewer than 55 dirty pages are
 *   left, or when the duplicated pages — pages sent again after an earlier send —
 *   exceed 2.5× the VM's pages.
 * - Phase 2: every page with to_send = 1 and to_skip = 0 is sent.
 * - The last iteration sends everything.
 * // see: Agrawal & Pateriya 2013, second-chance pre-copy live migration
 */
export class SecondChanceSelection extends SelectionPolicyBase {
  static readonly policyName = "second-chance";
  static readonly description =
    "phase 1: send if not in to_skip and unmodified for 2 iterations; phase 2 (send unless in to_skip) after 28 iterations, < 55 dirty pages or > 2.5× VM pages duplicated";
  readonly name = SecondChanceSelection.policyName;
  readonly maxRounds: number;
  readonly minPages: number;
  readonly maxSentFactor: number;
  #phase2 = false;
  #duplicated = 0;
  /** Pages sent in earlier rounds, and the same before this round (for recheck). */
  #everSent: DirtyBitmap | null = null;
  #sentBefore: DirtyBitmap | null = null;

  constructor(options: SecondChanceOptions = {}) {
    super();
    this.maxRounds = options.maxRounds ?? 28;
    this.minPages = options.minPages ?? 55;
    this.maxSentFactor = options.maxSentFactor ?? 2.5;
  }

  /** Pages sent so far that had been sent before (the duplicates the switch counts). */
  get duplicated(): number {
    return this.#duplicated;
  }

  /** to_skip is peeked again before each batch, as Xen does; a page held back is no duplicate. */
  recheck(batch: Uint32Array, redirtied: DirtyBitmap): Uint32Array {
    const keep = this.withoutRedirtied(batch, redirtied);
    if (keep !== batch && this.#sentBefore && this.#everSent)
      for (const p of batch)
        if (redirtied.get(p)) {
          if (this.#sentBefore.get(p)) this.#duplicated--;
          else this.#everSent.clear(p);
        }
    return keep;
  }

  protected choose(ctx: SelectionContext, send: DirtyBitmap) {
    const everSent = this.scratch(ctx, 0);
    if (ctx.firstRound) this.#restart(everSent);
    let note: string | undefined;
    if (
      !this.#phase2 &&
      (ctx.round >= this.maxRounds ||
        ctx.dirty.count() < this.minPages ||
        this.#duplicated > this.maxSentFactor * ctx.guestPages)
    ) {
      this.#phase2 = true;
      note = "switched to phase 2";
    }
    send.copyFrom(ctx.dirty);
    if (!ctx.firstRound) {
      if (ctx.redirtied) send.andNot(ctx.redirtied);
      if (!this.#phase2) send.andNot(ctx.history.roundBitmap(0)).andNot(ctx.history.roundBitmap(1));
    }
    this.#sentBefore = this.scratch(ctx, 2).copyFrom(everSent);
    this.#everSent = everSent;
    this.#duplicated += this.scratch(ctx, 1).copyFrom(send).and(everSent).count();
    everSent.or(send);
    return { note };
  }

  #restart(everSent: DirtyBitmap): void {
    everSent.clearAll();
    this.#phase2 = false;
    this.#duplicated = 0;
  }

  protected override onLastRound(): void {
    this.#phase2 = false;
    this.#duplicated = 0;
  }

  override reset(): void {
    this.#phase2 = false;
    this.#duplicated = 0;
  }

  override dispose(): void {
    this.#everSent = this.#sentBefore = null;
    super.dispose();
  }
}
