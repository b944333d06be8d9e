// Stage "rle": the run-length page codec (assembly/rle.ts grammar, codec/rle.ts) for pages
// with enough uniform 8-byte words, each encoding capped at a byte budget; applied in
// place on the destination's page.
import type { KernelRegion } from "../../kernel/heap.js";
import { PAGE_SIZE, type Kernel } from "../../kernel/kernel.js";
import { decodeRle } from "../rle.js";
import { updatePage, type ApplyTarget } from "./apply-target.js";

/** Per packed page: lengths[j] > 0 bytes in bodies[j]; ≤ 0 no encoding within the budget (or not a candidate). */
export interface RleEncodings {
  lengths: Int32Array;
  bodies: Uint8Array[];
}

/**
 * RLE-encodes the candidates among the `count` pages packed at `snapshot` (kernel memory),
 * through `work` (≥ count × 4096 bytes), each at most `maxBytes`. `flags` holds one byte
 * per page. Cost: one kernel call to pick candidates, one per candidate, one copy out.
 */
export function encodeRleCandidates(
  k: Kernel,
  snapshot: number,
  count: number,
  flags: KernelRegion,
  work: KernelRegion,
  maxBytes: number,
): RleEncodings {
  const lengths = new Int32Array(count).fill(-1);
  const bodies: Uint8Array[] = new Array(count);
  // the kernel pre-filter: pages with fewer uniform 8-byte words are not worth encoding
  const minWords = Math.max(1, Math.ceil((PAGE_SIZE - maxBytes) / 8 / 2));
  if (k.raw.rleCandidates(snapshot, count, minWords, flags.ptr) === 0) return { lengths, bodies };
  const f = new Uint8Array(k.memory.buffer, flags.ptr, count);
  let o = 0;
  for (let j = 0; j < count; j++) {
    if (!f[j]) continue;
    const n = k.raw.rleEncode(snapshot + j * PAGE_SIZE, work.ptr + o, maxBytes);
    lengths[j] = n;
    if (n > 0) o += n;
  }
  const data = new Uint8Array(k.memory.buffer, work.ptr, o).slice();
  for (let j = 0, at = 0; j < count; j++) {
    if (lengths[j] > 0) {
      bodies[j] = data.subarray(at, at + lengths[j]);
      at += lengths[j];
    }
  }
  return { lengths, bodies };
}

export function applyRleRecord(t: ApplyTarget, page: number, body: Uint8Array): void {
  updatePage(t, page, (p) => decodeRle(t.kernel, body, p));
}
