// Stage "dedup": a page whose content the destination already holds (in this guest or
// another at the same destination) is sent as a reference, guest:u16 reserved:u16
// page:u32, and applied by copying the referenced page. The index learns what every
// destination page will hold in the order records are emitted (encode-pipeline.ts).
import { DEDUP_NONE } from "../../kernel/abi.js";
import type { DedupIndex } from "../dedup-index.js";
import { RecordError, RecordKind } from "../../wire/page-record.js";
import type { ApplyTarget } from "./apply-target.js";

/** Records the batch pages at `positions` (e.g. its zero pages) as holding their hashed content. */
export function recordDedupPages(
  index: DedupIndex,
  guest: number,
  list: Uint32Array,
  hashes: BigUint64Array,
  positions: number[],
): void {
  index.record(
    guest,
    Uint32Array.from(positions, (i) => list[i]),
    pickHashes(hashes, positions),
  );
}

/**
 * Looks up the batch pages at `positions`, in order, recording each as what its page will
 * hold; marks the ones the destination already has DEDUP in `kind`. Returns the
 * references, (guest, page) per position, DEDUP_NONE for a miss.
 */
export function findDuplicatePages(
  index: DedupIndex,
  guest: number,
  list: Uint32Array,
  hashes: BigUint64Array,
  positions: number[],
  kind: Int8Array,
): Uint32Array {
  const refs = new Uint32Array(2 * positions.length);
  if (!positions.length) return refs;
  index.lookupAndRecord(
    guest,
    Uint32Array.from(positions, (i) => list[i]),
    pickHashes(hashes, positions),
    refs,
  );
  positions.forEach((i, j) => {
    if (refs[2 * j] !== DEDUP_NONE) kind[i] = RecordKind.DEDUP;
  });
  return refs;
}

export function applyDedupRecord(t: ApplyTarget, page: number, body: Uint8Array): void {
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const guest = v.getUint16(0, true);
  const source = v.getUint32(4, true);
  const mem = guest === 0 ? t.memory : t.guests.get(guest);
  if (!mem) throw new RecordError("DEDUP_REFERENCE", `dedup record for page ${page} names unknown guest ${guest}`);
  if (source >= mem.pageCount)
    throw new RecordError(
      "PAGE_OUT_OF_RANGE",
      `dedup record for page ${page}: source page ${source} is past the end of guest ${guest} (${mem.pageCount} pages)`,
    );
  const from = mem.pageView(source);
  if (from) {
    t.memory.writePage(page, from); // kernel to kernel, no staging
    return;
  }
  mem.readPages([source], t.scratch);
  t.memory.writePage(page, t.scratch);
}

/** Hashes of the listed batch positions, packed (low, high per page); copied as u32 words (no BigInt work). */
function pickHashes(hashes: BigUint64Array, positions: number[]): BigUint64Array {
  const out = new BigUint64Array(2 * positions.length);
  const from = new Uint32Array(hashes.buffer, hashes.byteOffset, hashes.length * 2);
  const to = new Uint32Array(out.buffer);
  positions.forEach((i, j) => to.set(from.subarray(4 * i, 4 * i + 4), 4 * j));
  return out;
}
