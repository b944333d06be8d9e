// The destination half of the qemu-proxy's stream: RAM sections QEMU's loader accepts, built
// from the pages the proxy holds. Plain records only (ZERO for a page of zeros, PAGE
// otherwise); the block name goes with the first record of a section and whenever the
// block changes, CONTINUE otherwise — as QEMU's own writer does.
import { PagewireRangeError } from "../errors.js";
import { PAGE_SIZE } from "../kernel/abi.js";
import { QemuSection, RamFlag, type QemuStreamHead, type RamBlock } from "./qemu-stream.js";

export class RamSectionWriter {
  readonly head: QemuStreamHead;
  /** Bytes written into sections so far, and records. */
  bytes = 0;
  records = 0;

  constructor(head: QemuStreamHead) {
    this.head = head;
  }

  /**
   * One PART (or, at completion, END) section of the ram section with `pages` (ascending)
   * from `memory` (the flat page space of head.blocks); `isZero(page)` says which go as ZERO.
   * Returned as pieces to write in order: the record headers, and views of `memory` for page
   * bodies (no copy: guest RAM in a shared kernel memory copies slowly in JS; a writev takes
   * it as it is).
   */
  sectionPieces(
    pages: ArrayLike<number>,
    memory: Uint8Array,
    isZero: (page: number) => boolean,
    completion: boolean,
  ): Uint8Array[] {
    const h = this.head;
    const blocks = h.blocks;
    let headerBytes = 5 + 8 + (h.footers ? 5 : 0);
    let b = 0;
    let last: RamBlock | null = null;
    // sizes first: one header buffer per section. Each page is judged once: memory may be
    // written meanwhile (data channels apply the next round while this one is written out)
    const zero = new Uint8Array(pages.length);
    for (let i = 0; i < pages.length; i++) {
      const p = pages[i];
      if (!(p < h.pageCount) || (i > 0 && p <= pages[i - 1]))
        throw new PagewireRangeError("PAGE_INDEX", `RamSectionWriter: page ${p} out of order or past ${h.pageCount}`);
      while (p >= blocks[b].firstPage + blocks[b].pages) b++;
      zero[i] = isZero(p) ? 1 : 0;
      headerBytes += 8 + (blocks[b] !== last ? 1 + blocks[b].name.length : 0) + (zero[i] ? 1 : 0);
      last = blocks[b];
    }
    const hdr = new Uint8Array(headerBytes);
    const v = new DataView(hdr.buffer);
    const pieces: Uint8Array[] = [];
    let o = 0;
    let run = 0; // start of the header bytes not yet handed out
    hdr[o++] = completion ? QemuSection.END : QemuSection.PART;
    v.setUint32(o, h.sectionId);
    o += 4;
    b = 0;
    last = null;
    for (let i = 0; i < pages.length; i++) {
      const p = pages[i];
      while (p >= blocks[b].firstPage + blocks[b].pages) b++;
      const block = blocks[b];
      const offset = (p - block.firstPage) * PAGE_SIZE;
      const flags = (zero[i] ? RamFlag.ZERO : RamFlag.PAGE) | (block === last ? RamFlag.CONTINUE : 0);
      v.setUint32(o, Math.floor(offset / 2 ** 32));
      v.setUint32(o + 4, (offset >>> 0) | flags);
      o += 8;
      if (block !== last) {
        hdr[o++] = block.name.length;
        for (let c = 0; c < block.name.length; c++) hdr[o++] = block.name.charCodeAt(c);
        last = block;
      }
      if (zero[i]) hdr[o++] = 0;
      else {
        pieces.push(hdr.subarray(run, o), memory.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE));
        run = o;
      }
    }
    v.setUint32(o, 0);
    v.setUint32(o + 4, RamFlag.EOS);
    o += 8;
    if (h.footers) {
      hdr[o++] = QemuSection.FOOTER;
      v.setUint32(o, h.sectionId);
      o += 4;
    }
    pieces.push(hdr.subarray(run, o));
    const bytes = headerBytes + (pages.length - zero.reduce((s, z) => s + z, 0)) * PAGE_SIZE;
    this.bytes += bytes;
    this.records += pages.length;
    return pieces;
  }

  /** sectionPieces as one buffer (a copy of each page). */
  section(
    pages: ArrayLike<number>,
    memory: Uint8Array,
    isZero: (page: number) => boolean,
    completion: boolean,
  ): Uint8Array {
    const pieces = this.sectionPieces(pages, memory, isZero, completion);
    const out = new Uint8Array(pieces.reduce((s, p) => s + p.length, 0));
    let o = 0;
    for (const p of pieces) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}
