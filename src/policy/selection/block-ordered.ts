import type { DirtyBitmap } from "../../kernel/dirty-bitmap.js";
import type { SelectionContext } from "../types.js";
import { countPerGroup, groupCandidates, SelectionPolicyBase } from "./base.js";

export interface BlockOrderedOptions {
  /** Pages per block (default 64: 256 KiB). */
  blockPages?: number;
  /** A block whose share of pages dirtied in the latest harvest exceeds this is deferred (default 0.5). */
  hotShare?: number;
}

/**
 * Block ordering: memory is cut into fixed blocks (64 pages); a block's heat is the
 * share of its pages dirtied in the latest harvest. Blocks being rewritten in bulk
 * (heat > 0.5) are deferred whole; the other blocks' candidates are sent coldest block
 * first (ties by address), so the pages most likely to stay clean go out before the
 * round's end. The first round sends everything in address order; the last sends all.
 * // see: Das et al. 2015, block-ordered pre-copy page transfer (the heat rule is this project's)
 */
export class BlockOrderedSelection extends SelectionPolicyBase {
  static readonly policyName = "block-ordered";
  static readonly description = "send blocks coldest first by latest-round heat; defer blocks rewritten in bulk";
  readonly name = BlockOrderedSelection.policyName;
  readonly blockPages: number;
  readonly hotShare: number;

  constructor(options: BlockOrderedOptions = {}) {
    super();
    this.blockPages = Math.max(1, Math.floor(options.blockPages ?? 64));
    this.hotShare = options.hotShare ?? 0.5;
  }

  protected choose(ctx: SelectionContext, send: DirtyBitmap) {
    send.copyFrom(ctx.dirty);
    if (ctx.firstRound) return;
    const heat = countPerGroup(ctx.history.roundBitmap(0), this.blockPages);
    const groups = groupCandidates(ctx.dirty.collect(), this.blockPages);
    const sendable = groups.filter((g) => heat[g.group] / this.blockPages <= this.hotShare);
    sendable.sort((a, b) => heat[a.group] - heat[b.group] || a.group - b.group);
    for (const g of groups) if (heat[g.group] / this.blockPages > this.hotShare) for (const p of g.pages) send.clear(p);
    const order = new Uint32Array(sendable.reduce((n, g) => n + g.pages.length, 0));
    let o = 0;
    for (const g of sendable) {
      order.set(g.pages, o);
      o += g.pages.length;
    }
    return { order };
  }
}
