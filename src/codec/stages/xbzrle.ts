// Stage "xbzrle": a delta (QEMU's migration/xbzrle.c grammar, codec/xbzrle.ts) against the
// copy the XBZRLE cache keeps of what the destination holds; applied in place on the
// destination's page. The cache never keeps a copy that differs from the destination's
// page, whatever stage a page takes: the pipeline overwrites it (overwriteCachedPage)
// for zero, dedup and RLE pages (QEMU does this for zero pages: xbzrle_cache_zero_page).
import type { KernelRegion } from "../../kernel/heap.js";
import { PAGE_SIZE, type Kernel } from "../../kernel/kernel.js";
import { decodeXbzrle } from "../xbzrle.js";
import { SAVE_MISS_INSERTED } from "../../kernel/abi.js";
import type { XbzrleCache } from "../xbzrle-cache.js";
import { updatePage, type ApplyTarget } from "./apply-target.js";

/** Per packed page: lengths[j] > 0 bytes in bodies[j]; 0 identical to the cached copy; < 0 no delta (cache miss, overflow). */
export interface CachedDeltas {
  lengths: Int32Array;
  bodies: Uint8Array[];
}

/**
 * Encodes the pages packed at the front of `packed` (their page numbers in `pages`)
 * against the cache, through `work` (≥ pages × 4096 bytes of kernel memory), and updates
 * the cache as QEMU's save_xbzrle_page does. Cost: one kernel batch call, one copy of the deltas.
 */
export function encodeCachedDeltas(
  k: Kernel,
  cache: XbzrleCache,
  packed: Uint8Array,
  pages: Uint32Array,
  syncCount: number,
  work: KernelRegion,
  lastStage: boolean,
): CachedDeltas {
  const m = pages.length;
  const lengths = new Int32Array(m).fill(SAVE_MISS_INSERTED);
  cache.savePages(packed, pages, syncCount, new Uint8Array(k.memory.buffer, work.ptr, m * PAGE_SIZE), lengths, {
    packed: true,
    lastStage,
  });
  // copied out: RLE reuses the work area
  const data = new Uint8Array(k.memory.buffer, work.ptr, m * PAGE_SIZE);
  const bodies: Uint8Array[] = new Array(m);
  for (let j = 0, o = 0; j < m; j++) {
    if (lengths[j] > 0) {
      bodies[j] = data.slice(o, o + lengths[j]);
      o += lengths[j];
    }
  }
  return { lengths, bodies };
}

/** No deltas for `count` pages (the cache is off, or not in use this round): every page a miss. */
export function noCachedDeltas(count: number): CachedDeltas {
  return { lengths: new Int32Array(count).fill(SAVE_MISS_INSERTED), bodies: [] };
}

/** Keeps a cached copy equal to what the destination now holds (zeros when `data` is null). */
export function overwriteCachedPage(cache: XbzrleCache | null, page: number, data: Uint8Array | null): void {
  if (!cache) return;
  const cached = cache.lookup(page);
  if (!cached) return;
  if (data) cached.set(data);
  else cached.fill(0);
}

export function applyXbzrleRecord(t: ApplyTarget, page: number, body: Uint8Array): void {
  // a delta against the page as it is here; the decoder leaves it unchanged on bad input
  updatePage(t, page, (p) => void decodeXbzrle(t.kernel, body, p));
}
