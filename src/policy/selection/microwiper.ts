import type { DirtyBitmap } from "../../kernel/dirty-bitmap.js";
import type { SelectionContext } from "../types.js";
import { countPerGroup, groupCandidates, SelectionPolicyBase } from "./base.js";

export interface MicrowiperOptions {
  /** Pages per stripe (default 64). */
  stripePages?: number;
}

/**
 * Microwiper: memory is cut into stripes (64 pages); a stripe's rewrite rate is its
 * pages dirtied in the latest harvest divided by the previous round's duration (pages
 * per second). Candidate stripes are sent slowest-rewriting first, accumulating their
 * rates; the round ends — the remaining stripes are deferred to the next round — as
 * soon as the next stripe would take the accumulated rewrite rate above the bandwidth
 * estimate (pages per second), since from then on pages would be dirtied faster than
 * they are sent. Without a bandwidth estimate or a previous round duration (first
 * round) every candidate is sent, ordered. The last round sends everything.
 * // see: Du et al. 2010, "Microwiper: efficient memory propagation in live migration of virtual machines" (ICPP)
 */
export class MicrowiperSelection extends SelectionPolicyBase {
  static readonly policyName = "microwiper";
  static readonly description =
    "send stripes slowest-rewriting first until their accumulated rewrite rate exceeds the bandwidth";
  readonly name = MicrowiperSelection.policyName;
  readonly stripePages: number;

  constructor(options: MicrowiperOptions = {}) {
    super();
    this.stripePages = Math.max(1, Math.floor(options.stripePages ?? 64));
  }

  protected choose(ctx: SelectionContext, send: DirtyBitmap) {
    if (ctx.firstRound) {
      send.copyFrom(ctx.dirty);
      return;
    }
    const seconds = ctx.previousRoundSeconds ?? 0;
    const bandwidth = ctx.bandwidthPagesPerSecond ?? 0;
    const dirtied = countPerGroup(ctx.history.roundBitmap(0), this.stripePages);
    const rate = (g: number) => (seconds > 0 ? dirtied[g] / seconds : 0);
    const stripes = groupCandidates(ctx.dirty.collect(), this.stripePages);
    stripes.sort((a, b) => rate(a.group) - rate(b.group) || a.group - b.group);
    send.clearAll();
    let accumulated = 0,
      n = 0,
      taken = 0;
    const limited = bandwidth > 0 && seconds > 0;
    for (const s of stripes) {
      if (limited && accumulated + rate(s.group) > bandwidth) break;
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
    return {
      order,
      note: taken < stripes.length ? `round ends at rewrite rate ${accumulated.toFixed(1)} pages/s` : undefined,
    };
  }
}
