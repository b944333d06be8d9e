// The source's post-copy phase after the switch: the destination runs and faults on
// missing pages. Demand requests jump the queue (each page in its own frame, so it is not
// delayed behind a batch); between requests, the rest is pushed in the background in
// small chunks starting right after the latest fault (pre-paging around recent faults).
// see: Hines & Gopalan 2009, "Post-copy based live virtual machine migration using
// adaptive pre-paging and dynamic self-ballooning".
import type { DirtyBitmap } from "../kernel/dirty-bitmap.js";

export interface PostcopyPushContext {
  /** Pages still missing at the destination; cleared as they are sent. */
  pending: DirtyBitmap;
  /** Pages pushed per background chunk (the pre-paging window). */
  prepagePages: number;
  /** The next demand request from the destination, if any arrived. */
  nextRequest(): number | undefined;
  /** Encodes and sends these pages in one frame. */
  sendPages(pages: Uint32Array): Promise<void>;
  /** Throws if the destination failed or aborted meanwhile. */
  checkRemote(): void;
  /** Lets requests arrive (I/O callbacks run). */
  yieldToRequests(): Promise<void>;
}

/** Pages sent so far, on demand and in the background (kept up to date, also when a send fails). */
export interface PostcopyTally {
  requested: number;
  pushed: number;
}

/** Sends every pending page, counting in `tally` how many went on demand and how many in the background. */
export async function pushPostcopyPages(
  ctx: PostcopyPushContext,
  tally: PostcopyTally = { requested: 0, pushed: 0 },
): Promise<PostcopyTally> {
  const { pending } = ctx;
  const one = new Uint32Array(1);
  let cursor = 0;
  while (pending.count() > 0) {
    ctx.checkRemote();
    for (let p = ctx.nextRequest(); p !== undefined; p = ctx.nextRequest()) {
      if (p >= pending.pageCount || !pending.get(p)) continue; // already sent
      pending.clear(p);
      one[0] = p;
      await ctx.sendPages(one);
      tally.requested++;
      cursor = p + 1;
    }
    // background push: the next pages from the cursor, wrapping around
    const chunk: number[] = [];
    let p = pending.nextSet(Math.min(cursor, pending.pageCount));
    if (p < 0) p = pending.nextSet(0);
    while (p >= 0 && chunk.length < ctx.prepagePages) {
      chunk.push(p);
      pending.clear(p);
      p = p + 1 < pending.pageCount ? pending.nextSet(p + 1) : -1;
    }
    if (chunk.length > 0) {
      cursor = chunk[chunk.length - 1] + 1;
      await ctx.sendPages(Uint32Array.from(chunk));
      tally.pushed += chunk.length;
    }
    await ctx.yieldToRequests();
  }
  return tally;
}
