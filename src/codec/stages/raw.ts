// Stage "raw": the whole page, for a page no other stage took (the pipeline's last
// choice when it emits a batch); applied by writing the page.
import type { ApplyTarget } from "./apply-target.js";

export function applyRawRecord(t: ApplyTarget, page: number, body: Uint8Array): Uint8Array {
  t.memory.writePage(page, body);
  return body;
}
