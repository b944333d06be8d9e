import { PagewireRangeError } from "../../errors.js";
import { DirtyBitmap } from "../../kernel/dirty-bitmap.js";
import type { PageSelectionPolicy, SelectionContext, SelectionOutput, SelectionResult } from "../types.js";

/** What `choose` may add to the result. */
export interface ChoiceExtras {
  order?: Uint32Array;
  note?: string;
  endRound?: boolean;
}

/**
 * Shared frame of every selection policy: the last round sends every candidate; otherwise
 * the policy's `choose` writes `send`, which is then clipped to the candidates, and
 * `defer` becomes the rest. So no policy can drop a candidate: `send ∪ defer = dirty`.
 */
export abstract class SelectionPolicyBase implements PageSelectionPolicy {
  readonly kind = "selection" as const;
  abstract readonly name: string;
  #scratch: DirtyBitmap[] = [];

  select(ctx: SelectionContext, out: SelectionOutput): SelectionResult {
    for (const b of [out.send, out.defer, ctx.redirtied]) {
      if (b && (b.kernel !== ctx.dirty.kernel || b.pageCount !== ctx.dirty.pageCount)) {
        throw new PagewireRangeError(
          "BITMAP_MISMATCH",
          `${this.name}: output and peek bitmaps must share the candidates' kernel and page count (${ctx.dirty.pageCount} vs ${b.pageCount})`,
        );
      }
    }
    let extras: ChoiceExtras | undefined;
    if (ctx.lastRound) {
      out.send.copyFrom(ctx.dirty);
      this.onLastRound();
    } else {
      extras = this.choose(ctx, out.send) ?? undefined;
      out.send.and(ctx.dirty);
    }
    out.defer.copyFrom(ctx.dirty).andNot(out.send);
    return {
      sent: out.send.count(),
      deferred: out.defer.count(),
      order: extras?.order,
      note: extras?.note,
      endRound: extras?.endRound,
    };
  }

  /** Writes the pages to send this round into `send` (anything outside the candidates is ignored). */
  protected abstract choose(ctx: SelectionContext, send: DirtyBitmap): ChoiceExtras | void;

  /** Called on the stop-and-copy round. */
  protected onLastRound(): void {}

  reset(): void {}

  /** The pages of `batch` not in `redirtied` (Xen's to_skip), in order; `batch` itself when none is. */
  protected withoutRedirtied(batch: Uint32Array, redirtied: DirtyBitmap): Uint32Array {
    let keep = 0;
    for (const p of batch) if (!redirtied.get(p)) keep++;
    if (keep === batch.length) return batch;
    const out = new Uint32Array(keep);
    let o = 0;
    for (const p of batch) if (!redirtied.get(p)) out[o++] = p;
    return out;
  }

  /** Scratch bitmap `i`, sized like the candidates (re-created if the size changes). */
  protected scratch(ctx: SelectionContext, i: number): DirtyBitmap {
    const d = ctx.dirty;
    let b = this.#scratch[i];
    if (!b || b.kernel !== d.kernel || b.pageCount !== d.pageCount) {
      b?.dispose();
      b = this.#scratch[i] = new DirtyBitmap(d.kernel, d.pageCount);
    }
    return b;
  }

  dispose(): void {
    for (const b of this.#scratch) b?.dispose();
    this.#scratch = [];
  }
}

/**
 * Orders the candidate pages by group (fixed-size blocks/stripes) by ascending key, ties
 * by group index; returns the ordered groups (index, pages). Used by block-ordered and
 * microwiper. Cost: one collect of the candidates and a sort of the non-empty groups.
 */
export function groupCandidates(
  candidates: Uint32Array,
  groupPages: number,
): Array<{ group: number; pages: Uint32Array }> {
  const out: Array<{ group: number; pages: Uint32Array }> = [];
  let i = 0;
  while (i < candidates.length) {
    const g = Math.floor(candidates[i] / groupPages);
    let j = i;
    while (j < candidates.length && Math.floor(candidates[j] / groupPages) === g) j++;
    out.push({ group: g, pages: candidates.subarray(i, j) });
    i = j;
  }
  return out;
}

/** Dirty pages per group in `bitmap` (e.g. the latest round). */
export function countPerGroup(bitmap: DirtyBitmap, groupPages: number): Uint32Array {
  const counts = new Uint32Array(Math.ceil(bitmap.pageCount / groupPages) || 1);
  for (const p of bitmap.collect()) counts[Math.floor(p / groupPages)]++;
  return counts;
}
