// The destination's side of the pipeline: applies the records of a PAGES payload to
// guest memory. Every record header is checked by readPageRecords before a page is
// touched, and each record writes only its own page: a decoder that rejects its input
// leaves the page as it was.
import { PAGE_SIZE } from "../kernel/abi.js";
import type { Kernel } from "../kernel/kernel.js";
import type { GuestMemory } from "../memory/guest-memory.js";
import { readPageRecords, RecordError, RecordKind } from "../wire/page-record.js";
import { decodeRle } from "./rle.js";
import { decodeXbzrle } from "./xbzrle.js";

const ZERO_PAGE = new Uint8Array(PAGE_SIZE);

export interface ApplyOptions {
  /** Other guests' memories at this destination, by guest id, for gang-migration dedup references. Guest 0 is this memory. */
  guests?: ReadonlyMap<number, GuestMemory>;
}

export class PageApplier {
  readonly kernel: Kernel;
  readonly memory: GuestMemory;
  readonly #guests: ReadonlyMap<number, GuestMemory>;
  readonly #scratch = new Uint8Array(PAGE_SIZE);

  constructor(kernel: Kernel, memory: GuestMemory, options: ApplyOptions = {}) {
    this.kernel = kernel;
    this.memory = memory;
    this.#guests = options.guests ?? new Map();
  }

  /** Applies every record; calls `onPage` after each page is written. Returns the record count. */
  apply(payload: Uint8Array, onPage?: (page: number) => void): number {
    let n = 0;
    for (const r of readPageRecords(payload, this.memory.pageCount)) {
      switch (r.kind) {
        case RecordKind.ZERO:
          this.memory.writePage(r.page, ZERO_PAGE);
          break;
        case RecordKind.RAW:
          this.memory.writePage(r.page, r.body);
          break;
        case RecordKind.DEDUP:
          this.#applyDedup(r.page, r.body);
          break;
        case RecordKind.XBZRLE:
          // a delta against the page as it is here; the decoder leaves it unchanged on bad input
          this.#update(r.page, (page) => void decodeXbzrle(this.kernel, r.body, page));
          break;
        case RecordKind.RLE:
          this.#update(r.page, (page) => decodeRle(this.kernel, r.body, page));
          break;
      }
      n++;
      onPage?.(r.page);
    }
    return n;
  }

  /** Runs a decoder on the page in place (kernel memory) or on a copy written back. */
  #update(page: number, decode: (page: Uint8Array) => void): void {
    const view = this.memory.pageView(page);
    if (view) return decode(view);
    this.memory.readPages([page], this.#scratch);
    decode(this.#scratch);
    this.memory.writePage(page, this.#scratch);
  }

  #applyDedup(page: number, body: Uint8Array): void {
    const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
    const guest = v.getUint16(0, true);
    const source = v.getUint32(4, true);
    const mem = guest === 0 ? this.memory : this.#guests.get(guest);
    if (!mem) throw new RecordError("DEDUP_REFERENCE", `dedup record for page ${page} names unknown guest ${guest}`);
    if (source >= mem.pageCount) throw new RecordError("PAGE_OUT_OF_RANGE", `dedup record for page ${page}: source page ${source} is past the end of guest ${guest} (${mem.pageCount} pages)`);
    const from = mem.pageView(source);
    if (from) return this.memory.writePage(page, from); // kernel to kernel, no staging
    mem.readPages([source], this.#scratch);
    this.memory.writePage(page, this.#scratch);
  }
}
