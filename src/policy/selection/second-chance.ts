import type { DirtyBitmap } from "../../kernel/dirty-bitmap.js";
import type { SelectionContext } from "../types.js";
import { SelectionPolicyBase } from "./base.js";

export interface SecondChanceOptions {
  /** Rounds after which plain pre-copy takes over (default 28). */
  maxRounds?: number;
  /** Candidate count under which plain pre-copy takes over (default 55). */
  minPages?: number;
  /** Pages sent, as a multiple of guest pages, above which plain pre-copy takes over (default 2.5). */
  maxSentFactor?: number;
}

/**
 * Second chance: after the full first round, a candidate is sent only when it has been
 * unmodified for 2 consecutive rounds (in neither of the two latest harvests); a page
 * just dirtied gets a "second chance" to settle and is deferred. The policy switches,
 * for good, to plain pre-copy (send every candidate) once 28 rounds have run, fewer
 * than 55 candidates are left, or more than 2.5× the guest's pages have been sent.
 * // see: Agrawal & Pateriya 2013, second-chance pre-copy live migration
 */
export class SecondChanceSelection extends SelectionPolicyBase {
  static readonly policyName = "second-chance";
  static readonly description =
    "send a dirty page only when unmodified for 2 rounds; plain pre-copy after 28 rounds, < 55 pages or > 2.5× guest sent";
  readonly name = SecondChanceSelection.policyName;
  readonly maxRounds: number;
  readonly minPages: number;
  readonly maxSentFactor: number;
  #plain = false;

  constructor(options: SecondChanceOptions = {}) {
    super();
    this.maxRounds = options.maxRounds ?? 28;
    this.minPages = options.minPages ?? 55;
    this.maxSentFactor = options.maxSentFactor ?? 2.5;
  }

  protected choose(ctx: SelectionContext, send: DirtyBitmap) {
    let note: string | undefined;
    if (
      !this.#plain &&
      (ctx.round >= this.maxRounds ||
        ctx.dirty.count() < this.minPages ||
        ctx.pagesSent > this.maxSentFactor * ctx.guestPages)
    ) {
      this.#plain = true;
      note = "switched to plain pre-copy";
    }
    send.copyFrom(ctx.dirty);
    if (!this.#plain && !ctx.firstRound) {
      send.andNot(ctx.history.roundBitmap(0)).andNot(ctx.history.roundBitmap(1));
    }
    return { note };
  }

  protected override onLastRound(): void {
    this.#plain = false;
  }

  override reset(): void {
    this.#plain = false;
  }
}
