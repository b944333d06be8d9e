// The destination's side of the pipeline: applies the records of a PAGES payload to
// guest memory and hashes every page it writes into the whole-memory digest's table
// (engine/digest.ts), so the digest is kept as pages arrive.
//
// Guest RAM in this kernel's memory: one kernel call per payload (assembly/page-applier.ts)
// checks each record header as readPageRecords does before touching a page, applies it
// in one pass and hashes the page; a DEDUP record naming another guest is applied here
// and the kernel goes on from the next record. Any other memory (a file, another
// kernel's memory): readPageRecords, then each record through the apply step of the codec
// that made it (stages/, by the codec table's record kinds), and the staged page hashed.
// Either way each record writes only its own page (a decoder that rejects its input
// leaves the page as it was), a ZERO record writes nothing on a page that is already
// zero, and a failure is the same typed error (RecordError, XbzrleError, RleError, LzError).
import { type PagewireError, PagewireRangeError } from "../errors.js";
import {
  APPLY_CONTEXT_BYTES,
  APPLY_DEDUP_RANGE,
  APPLY_DIGEST_BITS,
  APPLY_DIGEST_TABLE,
  APPLY_DONE,
  APPLY_FOREIGN_DEDUP,
  APPLY_INDEX,
  APPLY_LZ_CORRUPT,
  APPLY_OFFSET,
  APPLY_PAGE_COUNT,
  APPLY_RAM,
  APPLY_RLE_CORRUPT,
  APPLY_SEED_HI,
  APPLY_SEED_LO,
  APPLY_UNWRITTEN,
  APPLY_XBZRLE_CORRUPT,
  DEDUP_RECORD_BYTES,
  PAGE_SIZE,
  PAGES_HEADER_BYTES,
  RECORD_HEADER_BYTES,
} from "../kernel/abi.js";
import type { Kernel } from "../kernel/kernel.js";
import { splitSeed } from "../kernel/pagehash.js";
import type { GuestMemory } from "../memory/guest-memory.js";
import { WasmGuestMemory } from "../memory/wasm-guest-memory.js";
import { readPageRecords, RecordError } from "../wire/page-record.js";
import { RECORD_CODECS, type RecordCodec } from "./codecs.js";
import { invalidLz } from "./lz.js";
import { invalidRle } from "./rle.js";
import type { ApplyStep, ApplyTarget } from "./stages/apply-target.js";
import { applyDedupRecord, dedupSourceOutOfRange } from "./stages/dedup.js";
import { applyLzRecord } from "./stages/lz.js";
import { applyRawRecord } from "./stages/raw.js";
import { applyRleRecord } from "./stages/rle.js";
import { applyXbzrleRecord } from "./stages/xbzrle.js";
import { applyZeroRecord } from "./stages/zero.js";
import { invalidXbzrle } from "./xbzrle.js";

/** Each record codec's apply step (a codec of the table missing here fails type checking). */
const APPLY_STEPS: { [N in RecordCodec["name"]]: ApplyStep } = {
  zero: applyZeroRecord,
  dedup: applyDedupRecord,
  xbzrle: applyXbzrleRecord,
  rle: applyRleRecord,
  lz: applyLzRecord,
  raw: applyRawRecord,
};

/** The same steps indexed by record kind. */
const APPLY_BY_KIND: ApplyStep[] = [];
for (const c of RECORD_CODECS) APPLY_BY_KIND[c.record] = APPLY_STEPS[c.name];

/** What the applier needs of the whole-memory digest (engine/digest.ts's MemoryDigest). */
export interface AppliedPageDigest {
  readonly kernel: Kernel;
  readonly pageCount: number;
  readonly seed: bigint;
  /** Kernel addresses of the per-page hash table (16 bytes per page) and of the bitmap of pages hashed. */
  readonly tableAddress: number;
  readonly hashedAddress: number;
  /** Hashes one page's content into the table. */
  update(page: number, data: Uint8Array): void;
}

export interface ApplyOptions {
  /** Other guests' memories at this destination, by guest id, for gang-migration dedup references. Guest 0 is this memory. */
  guests?: ReadonlyMap<number, GuestMemory>;
  /** The destination's whole-memory digest: every page written is hashed into it. */
  digest?: AppliedPageDigest;
}

/** u32 word of a context field. */
const W = (offset: number) => offset >>> 2;
/** Kernel failures in a record whose header is valid (the rest are header or payload checks). */
const BODY_ERRORS: readonly number[] = [APPLY_XBZRLE_CORRUPT, APPLY_RLE_CORRUPT, APPLY_LZ_CORRUPT, APPLY_DEDUP_RANGE];

export class PageApplier {
  readonly kernel: Kernel;
  readonly memory: GuestMemory;
  readonly #target: ApplyTarget;
  readonly #digest: AppliedPageDigest | null;
  /** Guest RAM the kernel applies records to, when it lives in this kernel's memory (and the digest too). */
  readonly #ram: WasmGuestMemory | null;
  readonly #seed: [number, number];
  /** Records of the payload being applied that are written. */
  #applied = 0;

  constructor(kernel: Kernel, memory: GuestMemory, options: ApplyOptions = {}) {
    this.kernel = kernel;
    this.memory = memory;
    this.#digest = options.digest ?? null;
    const d = this.#digest;
    if (d && d.pageCount !== memory.pageCount)
      throw new PagewireRangeError(
        "PAGE_COUNT",
        `PageApplier: the digest covers ${d.pageCount} pages, the memory has ${memory.pageCount}`,
      );
    this.#target = {
      kernel,
      memory,
      guests: options.guests ?? new Map(),
      scratch: new Uint8Array(PAGE_SIZE),
      zeroPagesUnwritten: 0,
    };
    const inKernel = memory instanceof WasmGuestMemory && memory.kernel === kernel && (!d || d.kernel === kernel);
    this.#ram = inKernel ? memory : null;
    this.#seed = d ? splitSeed(d.seed) : [0, 0];
  }

  /** ZERO records whose page was already zero, so was not written (since creation). */
  get zeroPagesUnwritten(): number {
    return this.#target.zeroPagesUnwritten;
  }

  /** Applies every record; calls `onPage` after each page is written. Returns the record count. */
  apply(payload: Uint8Array, onPage?: (page: number) => void): number {
    if (!this.#ram) return this.#applyEach(payload, onPage);
    this.#applied = 0;
    try {
      return this.#applyInKernel(payload, this.#ram);
    } finally {
      // the pages written, in order (all of them, or those before a failing record)
      if (onPage && this.#applied > 0) {
        let n = 0;
        for (const r of readPageRecords(payload, this.memory.pageCount)) {
          if (n++ === this.#applied) break;
          onPage(r.page);
        }
      }
    }
  }

  /** Any memory: record by record through the stages' apply steps. */
  #applyEach(payload: Uint8Array, onPage?: (page: number) => void): number {
    let n = 0;
    for (const r of readPageRecords(payload, this.memory.pageCount)) {
      const page = APPLY_BY_KIND[r.kind](this.#target, r.page, r.body);
      this.#digest?.update(r.page, page);
      n++;
      onPage?.(r.page);
    }
    return n;
  }

  /** Guest RAM in kernel memory: one kernel call, plus one per DEDUP record naming another guest. */
  #applyInKernel(payload: Uint8Array, ram: WasmGuestMemory): number {
    const k = this.kernel;
    const len = payload.length;
    const staged = k.owns(payload) ? null : k.alloc(Math.max(len, 1), 64);
    const context = k.alloc(APPLY_CONTEXT_BYTES, 64);
    try {
      if (staged) k.bytes(staged).set(payload);
      const at = staged ? staged.ptr : payload.byteOffset;
      const d = this.#digest;
      let c = k.u32(context);
      c[W(APPLY_RAM)] = ram.region.ptr;
      c[W(APPLY_PAGE_COUNT)] = ram.pageCount;
      c[W(APPLY_DIGEST_TABLE)] = d ? d.tableAddress : 0;
      c[W(APPLY_DIGEST_BITS)] = d ? d.hashedAddress : 0;
      c[W(APPLY_SEED_LO)] = this.#seed[0];
      c[W(APPLY_SEED_HI)] = this.#seed[1];
      c[W(APPLY_OFFSET)] = PAGES_HEADER_BYTES;
      c[W(APPLY_INDEX)] = 0;
      for (;;) {
        const rc = k.raw.applyPageRecords(context.ptr, at, len);
        c = k.u32(context);
        const offset = c[W(APPLY_OFFSET)];
        const index = c[W(APPLY_INDEX)];
        this.#target.zeroPagesUnwritten += c[W(APPLY_UNWRITTEN)];
        this.#applied = index;
        if (rc === APPLY_DONE) return index;
        // a view made now: an allocation may have replaced the buffer `payload` was a view of
        const view = new Uint8Array(k.memory.buffer, at, len);
        if (rc < 0 && !BODY_ERRORS.includes(rc)) throw this.#payloadError(rc, view, index);
        // the record's header is valid
        const v = new DataView(view.buffer, at, len);
        const page = v.getUint32(offset + 4, true);
        const length = v.getUint16(offset + 2, true);
        const body = view.subarray(offset + RECORD_HEADER_BYTES, offset + RECORD_HEADER_BYTES + length);
        if (rc !== APPLY_FOREIGN_DEDUP) throw this.#bodyError(rc, page, body);
        // another guest's page: the JS step applies it, then the kernel goes on
        const written = applyDedupRecord(this.#target, page, body);
        d?.update(page, written);
        this.#applied = index + 1;
        c = k.u32(context);
        c[W(APPLY_OFFSET)] = offset + RECORD_HEADER_BYTES + DEDUP_RECORD_BYTES;
        c[W(APPLY_INDEX)] = index + 1;
      }
    } finally {
      k.free(context);
      if (staged) k.free(staged);
    }
  }

  /** The typed error for a record whose body the kernel rejected: the same as the JS path throws. */
  #bodyError(rc: number, page: number, body: Uint8Array): PagewireError {
    if (rc === APPLY_XBZRLE_CORRUPT) return invalidXbzrle(body.length);
    if (rc === APPLY_RLE_CORRUPT) return invalidRle(body.length);
    if (rc === APPLY_LZ_CORRUPT) return invalidLz(body.length);
    const source = new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(4, true);
    return dedupSourceOutOfRange(page, source, 0, this.memory.pageCount);
  }

  /** The typed error for a header or payload check the kernel failed: the reader names it (the records before it are valid). */
  #payloadError(rc: number, payload: Uint8Array, index: number): PagewireError {
    try {
      for (const r of readPageRecords(payload, this.memory.pageCount)) void r;
    } catch (err) {
      if (err instanceof RecordError) return err;
      throw err;
    }
    return new RecordError("RECORD_CORRUPT", `record ${index}: the page applier kernel rejected it (code ${rc})`);
  }
}
