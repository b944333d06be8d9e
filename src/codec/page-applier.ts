// The destination's side of the pipeline: applies the records of a PAGES payload to
// guest memory, each through the apply step of the codec that made it (stages/, by the
// codec table's record kinds). Every record header is checked by readPageRecords before
// a page is touched, and each record writes only its own page: a decoder that rejects
// its input leaves the page as it was.
import type { Kernel } from "../kernel/kernel.js";
import type { GuestMemory } from "../memory/guest-memory.js";
import { PAGE_SIZE } from "../kernel/abi.js";
import { readPageRecords } from "../wire/page-record.js";
import { RECORD_CODECS, type RecordCodec } from "./codecs.js";
import type { ApplyStep, ApplyTarget } from "./stages/apply-target.js";
import { applyDedupRecord } from "./stages/dedup.js";
import { applyRawRecord } from "./stages/raw.js";
import { applyRleRecord } from "./stages/rle.js";
import { applyXbzrleRecord } from "./stages/xbzrle.js";
import { applyZeroRecord } from "./stages/zero.js";

/** Each record codec's apply step (a codec of the table missing here fails type checking). */
const APPLY_STEPS: { [N in RecordCodec["name"]]: ApplyStep } = {
  zero: applyZeroRecord,
  dedup: applyDedupRecord,
  xbzrle: applyXbzrleRecord,
  rle: applyRleRecord,
  raw: applyRawRecord,
};

/** The same steps indexed by record kind. */
const APPLY_BY_KIND: ApplyStep[] = [];
for (const c of RECORD_CODECS) APPLY_BY_KIND[c.record] = APPLY_STEPS[c.name];

export interface ApplyOptions {
  /** Other guests' memories at this destination, by guest id, for gang-migration dedup references. Guest 0 is this memory. */
  guests?: ReadonlyMap<number, GuestMemory>;
}

export class PageApplier {
  readonly kernel: Kernel;
  readonly memory: GuestMemory;
  readonly #target: ApplyTarget;

  constructor(kernel: Kernel, memory: GuestMemory, options: ApplyOptions = {}) {
    this.kernel = kernel;
    this.memory = memory;
    this.#target = { kernel, memory, guests: options.guests ?? new Map(), scratch: new Uint8Array(PAGE_SIZE) };
  }

  /** Applies every record; calls `onPage` after each page is written. Returns the record count. */
  apply(payload: Uint8Array, onPage?: (page: number) => void): number {
    let n = 0;
    for (const r of readPageRecords(payload, this.memory.pageCount)) {
      APPLY_BY_KIND[r.kind](this.#target, r.page, r.body);
      n++;
      onPage?.(r.page);
    }
    return n;
  }
}
