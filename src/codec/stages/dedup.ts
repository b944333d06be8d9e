// Stage "dedup": a page whose content the destination already holds (in this guest or
// another at the same destination) is sent as a reference, guest:u16 reserved:u16
// page:u32, and applied by copying the referenced page. The index learns what every
// destination page will hold in the order records are emitted (encode-pipeline.ts).
import { RecordError } from "../../wire/page-record.js";
import type { ApplyTarget } from "./apply-target.js";

export function applyDedupRecord(t: ApplyTarget, page: number, body: Uint8Array): Uint8Array {
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const guest = v.getUint16(0, true);
  const source = v.getUint32(4, true);
  const mem = guest === 0 ? t.memory : t.guests.get(guest);
  if (!mem) throw new RecordError("DEDUP_REFERENCE", `dedup record for page ${page} names unknown guest ${guest}`);
  if (source >= mem.pageCount) throw dedupSourceOutOfRange(page, source, guest, mem.pageCount);
  const from = mem.pageView(source);
  if (from) {
    t.memory.writePage(page, from); // kernel to kernel, no staging
    return from;
  }
  mem.readPages([source], t.scratch);
  t.memory.writePage(page, t.scratch);
  return t.scratch;
}

/** The error for a dedup record whose source page is past the end of its guest. */
export function dedupSourceOutOfRange(page: number, source: number, guest: number, pageCount: number): RecordError {
  return new RecordError(
    "PAGE_OUT_OF_RANGE",
    `dedup record for page ${page}: source page ${source} is past the end of guest ${guest} (${pageCount} pages)`,
  );
}
