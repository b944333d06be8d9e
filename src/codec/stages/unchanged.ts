// Stage "unchanged" (fake dirty): a dirty page whose 128-bit hash equals the one last sent
// gets no record. There is no apply side: the destination already holds the page.
import type { FakeDirtyFilter } from "../fake-dirty.js";

/** Batch kind of a page that gets no record (beside the RecordKind values). */
export const SKIP = -1;

/** Sets `kind` to SKIP for the batch pages unchanged since last sent; returns how many. */
export function markUnchangedPages(
  filter: FakeDirtyFilter,
  list: Uint32Array,
  hashes: BigUint64Array,
  kind: Int8Array,
): number {
  const skip = new Uint8Array(list.length);
  const n = filter.filterHashed(list, hashes, skip);
  for (let i = 0; i < list.length; i++) if (skip[i]) kind[i] = SKIP;
  return n;
}
