import type { DirtyBitmap } from "../../kernel/dirty-bitmap.js";
import type { SelectionContext } from "../types.js";
import { countPerGroup, groupCandidates, SelectionPolicyBase } from "./base.js";

export interface BlockOrderedOptions {
  /**
   * Pages per block. The paper sizes blocks from the VM's page count without a formula we
   * could check; default: √(guest pages) rounded up to a power of two (256 pages = 1 MiB
   * for a 256 MiB guest, 4096 pages for 64 GiB).
   */
  blockPages?: number;
}

/** √pages rounded up to a power of two, at least 1. */
export function defaultBlockPages(guestPages: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(1, Math.sqrt(guestPages))));
}

/**
 * Block ordering. Each page keeps the record of its per-iteration state — 1 when the page
 * is in the dirty bitmap that starts the iteration — whose first element is the iteration
 * it was last sent; here as two numbers per page, the iteration last sent and the 1s since
 * then (the 0s are the iterations since then minus the 1s). Blocks are ordered by their
 * cumulative dirty count (pages dirty over every harvest since the migration started),
 * least dirty first, ties by address. Going from the least dirty block, a page is sent
 * when, counted from the iteration after it was last sent, its 0s ≥ its 1s; a block none
 * of whose pages qualifies is passed over for the next. Other candidates are deferred.
 * The first iteration sends every page in address order; the last sends everything.
 * // see: Das et al. 2015, block-ordered pre-copy page transfer
 */
export class BlockOrderedSelection extends SelectionPolicyBase {
  static readonly policyName = "block-ordered";
  static readonly description =
    "blocks (√pages) least cumulatively dirty first; a page is sent when its clean iterations since last sent ≥ its dirty ones";
  readonly name = BlockOrderedSelection.policyName;
  readonly #blockOption: number | undefined;
  /** Iteration each page was last sent, -1 = never. */
  #lastSent = new Int32Array(0);
  /** Iterations since the page was last sent in which it was dirty (the 1s). */
  #ones = new Uint32Array(0);
  /** Cumulative dirty count per block. */
  #blockDirty = new Float64Array(0);

  constructor(options: BlockOrderedOptions = {}) {
    super();
    this.#blockOption = options.blockPages === undefined ? undefined : Math.max(1, Math.floor(options.blockPages));
  }

  /** Pages per block for a guest of `guestPages`. */
  blockPages(guestPages: number): number {
    return this.#blockOption ?? defaultBlockPages(guestPages);
  }

  protected choose(ctx: SelectionContext, send: DirtyBitmap) {
    const n = ctx.dirty.pageCount;
    const blockPages = this.blockPages(n);
    if (ctx.firstRound || this.#lastSent.length !== n) {
      this.#lastSent = new Int32Array(n).fill(-1);
      this.#ones = new Uint32Array(n);
      this.#blockDirty = new Float64Array(Math.ceil(n / blockPages) || 1);
    }
    const r = ctx.round;
    if (!ctx.firstRound) {
      // the harvest that starts this iteration: a 1 in this iteration's state for its pages
      const latest = ctx.history.roundBitmap(0);
      for (const p of latest.collect()) this.#ones[p]++;
      const perBlock = countPerGroup(latest, blockPages);
      for (let b = 0; b < perBlock.length; b++) this.#blockDirty[b] += perBlock[b];
    }
    const blocks = groupCandidates(ctx.dirty.collect(), blockPages);
    if (!ctx.firstRound)
      blocks.sort((a, b) => this.#blockDirty[a.group] - this.#blockDirty[b.group] || a.group - b.group);
    send.clearAll();
    const order: number[] = [];
    for (const blk of blocks) {
      for (const p of blk.pages) {
        // iterations lastSent + 1 .. r (0 .. r for a page never sent): r − lastSent of them
        const ones = this.#ones[p];
        const zeros = r - this.#lastSent[p] - ones;
        if (ctx.firstRound || zeros >= ones) {
          send.set(p);
          order.push(p);
          this.#lastSent[p] = r;
          this.#ones[p] = 0;
        }
      }
    }
    return { order: Uint32Array.from(order) };
  }

  override reset(): void {
    this.#lastSent = new Int32Array(0);
  }
}
