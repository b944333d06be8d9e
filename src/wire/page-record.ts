// Page records: the body of a PAGES frame.
//
//   pages-payload = round:u32 count:u32 record{count}
//   record        = kind:u8 reserved:u8(0) length:u16 page:u32 body[length]      (LE)
//
//   kind   length        body
//   ZERO   0             —                     the page is all zero
//   RAW    4096          the page
//   XBZRLE 1..4096       XBZRLE delta against the destination's current page (QEMU grammar)
//   RLE    1..4096       RLE encoding of the page (assembly/rle.ts grammar)
//   DEDUP  8             guest:u16 reserved:u16 page:u32 — copy of a page the destination holds
//   LZ     1..4096       LZ encoding of the page (assembly/lz.ts grammar)
//
// Records are packed back to back; a reader checks every header against the payload end
// and the memory size before it touches a page (codec/page-applier.ts; its kernel,
// assembly/page-applier.ts, makes the same checks in the same order).
import { PagewireError } from "../errors.js";
import {
  PAGE_SIZE,
  PAGES_HEADER_BYTES,
  RECORD_DEDUP,
  RECORD_HEADER_BYTES,
  RECORD_LZ,
  RECORD_RAW,
  RECORD_RLE,
  RECORD_XBZRLE,
  RECORD_ZERO,
} from "../kernel/abi.js";
import type { KernelRegion } from "../kernel/heap.js";
import type { Kernel } from "../kernel/kernel.js";

// the kernels write and read records too (assembly/encode-pipeline.ts, page-applier.ts): the values live in the ABI
export { PAGES_HEADER_BYTES, RECORD_HEADER_BYTES };

export const RecordKind = {
  ZERO: RECORD_ZERO,
  RAW: RECORD_RAW,
  XBZRLE: RECORD_XBZRLE,
  RLE: RECORD_RLE,
  DEDUP: RECORD_DEDUP,
  LZ: RECORD_LZ,
} as const;
export type RecordKind = (typeof RecordKind)[keyof typeof RecordKind];

/** A PAGES payload or a record in it is malformed (code RECORD_CORRUPT, PAGE_OUT_OF_RANGE, XBZRLE_OVERSIZE). */
export class RecordError extends PagewireError {}

/**
 * Appends records into a growable buffer and hands out finished PAGES payloads.
 * Cost: one copy of each record body.
 */
export class PageRecordWriter {
  #buf: Uint8Array;
  #view: DataView;
  #len = PAGES_HEADER_BYTES;
  #count = 0;
  #round = 0;
  readonly #head: number;
  readonly #tail: number;
  readonly #initial: number;
  readonly #kernel: Kernel | null;
  #region: KernelRegion | null = null;

  /**
   * `headroom` / `tailroom`: bytes kept free before and after the payload, so a frame
   * header and trailer can be written around it in place (see `take`). With `kernel`, the
   * buffer lives in kernel memory: raw pages are copied kernel to kernel and the frame
   * checksum runs in place; `take` then hands out a kernel view the caller must copy
   * before the next `add`.
   */
  constructor(initialBytes = 1 << 20, options: { headroom?: number; tailroom?: number; kernel?: Kernel } = {}) {
    this.#head = options.headroom ?? 0;
    this.#tail = options.tailroom ?? 0;
    this.#initial = initialBytes;
    this.#kernel = options.kernel ?? null;
    this.#buf = this.#allocate(this.#head + initialBytes + this.#tail);
    this.#view = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength);
  }

  /** Bytes in the payload so far. */
  get size(): number {
    return this.#len;
  }

  get count(): number {
    return this.#count;
  }

  begin(round: number): void {
    this.#round = round;
    this.#len = PAGES_HEADER_BYTES;
    this.#count = 0;
  }

  /** Appends a record; `body` may be empty (ZERO). */
  add(kind: RecordKind, page: number, body?: Uint8Array): void {
    const length = body ? body.length : 0;
    const o = this.#reserve(RECORD_HEADER_BYTES + length);
    this.#buf[o] = kind;
    this.#buf[o + 1] = 0;
    this.#view.setUint16(o + 2, length, true);
    this.#view.setUint32(o + 4, page, true);
    if (body) this.#buf.set(body, o + RECORD_HEADER_BYTES);
    this.#len += RECORD_HEADER_BYTES + length;
    this.#count++;
  }

  /** A DEDUP record: page gets the content of `sourcePage` of guest `guest` at the destination. */
  addDedup(page: number, guest: number, sourcePage: number): void {
    const o = this.#reserve(RECORD_HEADER_BYTES + 8);
    this.#buf[o] = RecordKind.DEDUP;
    this.#buf[o + 1] = 0;
    this.#view.setUint16(o + 2, 8, true);
    this.#view.setUint32(o + 4, page, true);
    this.#view.setUint16(o + 8, guest, true);
    this.#view.setUint16(o + 10, 0, true);
    this.#view.setUint32(o + 12, sourcePage, true);
    this.#len += RECORD_HEADER_BYTES + 8;
    this.#count++;
  }

  /**
   * The kernel address where `maxBytes` more payload bytes may be written in place by a
   * kernel of `kernel` (valid until the next allocation), or -1 when this writer's buffer
   * is not in that kernel's memory. `commit` then counts what was written.
   */
  reserveInKernel(kernel: Kernel, maxBytes: number): number {
    if (this.#kernel !== kernel) return -1;
    const o = this.#reserve(maxBytes); // may replace the region
    return this.#region!.ptr + o;
  }

  /** Counts `bytes` payload bytes holding `records` whole records, written in place after `reserveInKernel`. */
  commit(bytes: number, records: number): void {
    this.#len += bytes;
    this.#count += records;
  }

  /** Appends `records` whole records packed back to back in `data` (one copy). */
  addRecords(data: Uint8Array, records: number): void {
    const o = this.#reserve(data.length); // may replace the buffer
    this.#buf.set(data, o);
    this.commit(data.length, records);
  }

  /** The finished payload (a copy: the writer is reused). */
  finish(): Uint8Array {
    this.#seal();
    return this.#buf.slice(this.#head, this.#head + this.#len);
  }

  /**
   * Hands over the buffer without copying: the payload is at [headroom, headroom + length)
   * with `headroom` bytes free before it and `tailroom` after. A JS-backed writer starts a
   * new buffer; a kernel-backed one reuses its region, so the caller copies the frame out
   * before the next `add`.
   */
  take(): { buffer: Uint8Array; length: number } {
    this.#seal();
    const out = { buffer: this.#buf, length: this.#len };
    if (!this.#kernel) {
      this.#buf = this.#allocate(this.#head + this.#initial + this.#tail);
      this.#view = new DataView(this.#buf.buffer);
    }
    this.begin(this.#round);
    return out;
  }

  /** Returns a kernel-backed buffer to the kernel heap. */
  dispose(): void {
    if (this.#region) this.#kernel!.free(this.#region);
    this.#region = null;
  }

  #seal(): void {
    this.#refresh();
    this.#view.setUint32(this.#head, this.#round, true);
    this.#view.setUint32(this.#head + 4, this.#count, true);
  }

  /** Makes room for n more payload bytes; returns the buffer offset where they go. */
  #reserve(n: number): number {
    this.#refresh();
    const need = this.#head + this.#len + n + this.#tail;
    if (need > this.#buf.length) {
      const old = this.#region;
      const kept = this.#buf.slice(0, this.#head + this.#len);
      const next = this.#allocate(Math.max(this.#buf.length * 2, need));
      next.set(kept);
      if (old) this.#kernel!.free(old);
      this.#buf = next;
      this.#view = new DataView(next.buffer, next.byteOffset, next.byteLength);
    }
    return this.#head + this.#len;
  }

  #allocate(bytes: number): Uint8Array {
    if (!this.#kernel) return new Uint8Array(bytes);
    this.#region = this.#kernel.alloc(bytes, 64);
    return this.#kernel.bytes(this.#region);
  }

  /** Kernel-backed: re-creates the views when memory growth replaced the buffer. */
  #refresh(): void {
    if (this.#region && this.#buf.buffer !== this.#kernel!.memory.buffer) {
      this.#buf = this.#kernel!.bytes(this.#region);
      this.#view = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength);
    }
  }
}

/** One decoded record header; `body` is a view into the payload. */
export interface PageRecord {
  kind: RecordKind;
  page: number;
  body: Uint8Array;
}

/**
 * Walks a PAGES payload, checking each record header before yielding it: known kind,
 * body inside the payload, page < pageCount, length allowed for the kind.
 */
export function* readPageRecords(payload: Uint8Array, pageCount: number): Generator<PageRecord, void, undefined> {
  if (payload.length < PAGES_HEADER_BYTES)
    throw new RecordError("RECORD_CORRUPT", `PAGES payload of ${payload.length} bytes is shorter than its header`);
  const v = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const count = v.getUint32(4, true);
  let o = PAGES_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (o + RECORD_HEADER_BYTES > payload.length)
      throw new RecordError(
        "RECORD_CORRUPT",
        `record ${i} of ${count}: header past the payload end (${payload.length} bytes)`,
      );
    const kind = payload[o] as RecordKind;
    const length = v.getUint16(o + 2, true);
    const page = v.getUint32(o + 4, true);
    if (kind > RecordKind.LZ) throw new RecordError("RECORD_CORRUPT", `record ${i}: unknown kind ${kind}`);
    if (page >= pageCount)
      throw new RecordError(
        "PAGE_OUT_OF_RANGE",
        `record ${i}: page ${page} is past the end of memory (${pageCount} pages)`,
      );
    const bodyLength = length;
    if (o + RECORD_HEADER_BYTES + bodyLength > payload.length) {
      throw new RecordError(
        "RECORD_CORRUPT",
        `record ${i} (page ${page}): body of ${bodyLength} bytes runs past the payload end`,
      );
    }
    checkLength(kind, bodyLength, page);
    yield { kind, page, body: payload.subarray(o + RECORD_HEADER_BYTES, o + RECORD_HEADER_BYTES + bodyLength) };
    o += RECORD_HEADER_BYTES + bodyLength;
  }
  if (o !== payload.length)
    throw new RecordError("RECORD_CORRUPT", `PAGES payload has ${payload.length - o} bytes after its ${count} records`);
}

/** Round number of a PAGES payload (its header checked by readPageRecords). */
export function pagesRound(payload: Uint8Array): number {
  return new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(0, true);
}

function checkLength(kind: RecordKind, length: number, page: number): void {
  switch (kind) {
    case RecordKind.ZERO:
      if (length !== 0) throw new RecordError("RECORD_CORRUPT", `zero record for page ${page} carries ${length} bytes`);
      return;
    case RecordKind.RAW:
      if (length !== PAGE_SIZE)
        throw new RecordError("RECORD_CORRUPT", `raw record for page ${page} has ${length} bytes, want ${PAGE_SIZE}`);
      return;
    case RecordKind.XBZRLE:
      if (length === 0) throw new RecordError("RECORD_CORRUPT", `empty xbzrle record for page ${page}`);
      if (length > PAGE_SIZE)
        throw new RecordError(
          "XBZRLE_OVERSIZE",
          `xbzrle record for page ${page} has ${length} bytes, more than a page (${PAGE_SIZE})`,
        );
      return;
    case RecordKind.RLE:
      if (length === 0 || length > PAGE_SIZE)
        throw new RecordError(
          "RECORD_CORRUPT",
          `rle record for page ${page} has ${length} bytes (1..${PAGE_SIZE} allowed)`,
        );
      return;
    case RecordKind.LZ:
      if (length === 0 || length > PAGE_SIZE)
        throw new RecordError(
          "RECORD_CORRUPT",
          `lz record for page ${page} has ${length} bytes (1..${PAGE_SIZE} allowed)`,
        );
      return;
    case RecordKind.DEDUP:
      if (length !== 8)
        throw new RecordError("RECORD_CORRUPT", `dedup record for page ${page} has ${length} bytes, want 8`);
      return;
  }
}
