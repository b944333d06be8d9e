import type { DirtyBitmap } from "../../kernel/dirty-bitmap.js";
import type { SelectionContext } from "../types.js";
import { countPerGroup, groupCandidates, SelectionPolicyBase } from "./base.js";
import { defaultBlockPages } from "./block-ordered.js";

export interface MicrowiperOptions {
  /**
   * Pages per stripe. The paper derives the stripe size from the VM's memory size without
   * a formula we could check; default: √(guest pages) rounded up to a power of two.
   */
  stripePages?: number;
}

/**
 * Microwiper: memory is cut into stripes whose size follows the VM's memory size; a
 * stripe's rewriting rate is its pages dirtied in the latest harvest divided by the
 * previous iteration's duration (pages per second). Candidate stripes are sent in
 * increasing rate order, accumulating their rates; the next iteration starts as soon as
 * the accumulated rate exceeds the bandwidth estimate in guest pages per second (pages
 * sent ÷ sending time, not compressed bytes): the stripe that passes it is the round's
 * last, the remaining stripes are deferred, and the round ends without waiting for the
 * minimum round period (`endRound`). Without a bandwidth estimate or a previous duration
 * (first iteration) every candidate is sent, ordered. The last iteration sends everything.
 * // see: Du et al. 2010, "Microwiper: efficient memory propagation in live migration of virtual machines" (ICPP)
 */
export class MicrowiperSelection extends SelectionPolicyBase {
  static readonly policyName = "microwiper";
  static readonly description =
    "send stripes slowest-rewriting first; the next iteration starts once their accumulated rate exceeds the bandwidth (guest pages/s)";
  readonly name = MicrowiperSelection.policyName;
  readonly #stripeOption: number | undefined;

  constructor(options: MicrowiperOptions = {}) {
    super();
    this.#stripeOption = options.stripePages === undefined ? undefined : Math.max(1, Math.floor(options.stripePages));
  }

  /** Pages per stripe for a guest of `guestPages`. */
  stripePages(guestPages: number): number {
    return this.#stripeOption ?? defaultBlockPages(guestPages);
  }

  protected choose(ctx: SelectionContext, send: DirtyBitmap) {
    if (ctx.firstRound) {
      send.copyFrom(ctx.dirty);
      return;
    }
    const seconds = ctx.previousRoundSeconds ?? 0;
    const bandwidth = ctx.bandwidthPagesPerSecond ?? 0;
    const stripePages = this.stripePages(ctx.dirty.pageCount);
    const dirtied = countPerGroup(ctx.history.roundBitmap(0), stripePages);
    const rate = (g: number) => (seconds > 0 ? dirtied[g] / seconds : 0);
    const stripes = groupCandidates(ctx.dirty.collect(), stripePages);
    stripes.sort((a, b) => rate(a.group) - rate(b.group) || a.group - b.group);
    send.clearAll();
    let accumulated = 0,
      n = 0,
      taken = 0;
    const limited = bandwidth > 0 && seconds > 0;
    for (const s of stripes) {
      if (limited && accumulated > bandwidth) break;
      accumulated += rate(s.group);
      for (const p of s.pages) send.set(p);
      n += s.pages.length;
      taken++;
    }
    const order = new Uint32Array(n);
    let o = 0;
    for (const s of stripes.slice(0, taken)) {
      order.set(s.pages, o);
      o += s.pages.length;
    }
    const cut = taken < stripes.length;
    return {
      order,
      note: cut
        ? `next iteration: rewrite rate ${accumulated.toFixed(1)} > ${bandwidth.toFixed(1)} pages/s`
        : undefined,
      endRound: cut,
    };
  }
}
