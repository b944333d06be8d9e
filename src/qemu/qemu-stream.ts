// QEMU's own migration stream (QEMU 7.2, savevm.c and ram.c), as far as the qemu-proxy
// reads it: everything up to the end of the `ram` section's completion record is parsed;
// what follows (device sections, EOF, the VM description) is opaque.
//
//   "QEVM" be32 3                                     file magic, version
//   0x07 configuration: be32 len, machine name, subsections (0x05 …)
//   0x08 command: be16 cmd, be16 len, data            OPEN_RETURN_PATH, PING (others refused)
//   0x01 START  be32 id, idstr "ram", be32 instance, be32 version 4
//        be64 total|MEM_SIZE, {u8 len, block name, be64 used_length}*, be64 EOS
//        [0x7e be32 id]                               section footer (machine types ≥ 2.4)
//   0x02 PART   be32 id  records… EOS [footer]        pre-copy iterations
//   0x03 END    be32 id  records… EOS [footer]        completion: the guest is stopped
//   …device sections, 0x00 EOF, 0x06 be32 len JSON    opaque to the proxy
//
// A RAM record: be64 (offset in block | flags); without CONTINUE a u8 length and the block
// name follow; then ZERO: u8 fill byte | PAGE: 4096 bytes | XBZRLE: u8 0x01, be16 len, data.
// Anything else is refused with a reason (QemuStreamError), never skipped by guessing.
import { PagewireError } from "../errors.js";
import { PAGE_SIZE } from "../kernel/abi.js";

/** QEMU's migration stream breaks its format (QEMU_STREAM_MALFORMED) or uses what the proxy does not carry (QEMU_STREAM_UNSUPPORTED). */
export class QemuStreamError extends PagewireError {}

export const QEMU_FILE_MAGIC = 0x5145564d; // "QEVM"
export const QEMU_FILE_VERSION = 3;
export const QemuSection = {
  EOF: 0x00,
  START: 0x01,
  PART: 0x02,
  END: 0x03,
  FULL: 0x04,
  SUBSECTION: 0x05,
  VMDESCRIPTION: 0x06,
  CONFIGURATION: 0x07,
  COMMAND: 0x08,
  FOOTER: 0x7e,
} as const;
export const RamFlag = {
  MEM_SIZE: 0x04,
  ZERO: 0x02,
  PAGE: 0x08,
  EOS: 0x10,
  CONTINUE: 0x20,
  XBZRLE: 0x40,
  HOOK: 0x80,
  COMPRESS_PAGE: 0x100,
  MULTIFD_FLUSH: 0x200,
} as const;
export const QemuCommand = { OPEN_RETURN_PATH: 1, PING: 2 } as const;
/** Commands the proxy refuses, by number, with what they mean. */
const REFUSED_COMMANDS: Record<number, string> = {
  3: "POSTCOPY_ADVISE (postcopy-ram is on)",
  4: "POSTCOPY_LISTEN (post-copy)",
  5: "POSTCOPY_RUN (post-copy)",
  6: "POSTCOPY_RAM_DISCARD (post-copy)",
  7: "POSTCOPY_RESUME (post-copy)",
  8: "PACKAGED (post-copy)",
  9: "RECV_BITMAP (post-copy recovery)",
  10: "ENABLE_COLO (x-colo)",
};
const RAM_SECTION_VERSION = 4;
const XBZRLE_ENCODING = 0x01;
/** Bounds on the parts of the stream's head, far above what QEMU writes. */
const MAX_HEAD_BYTES = 1 << 20;
const MAX_NAME = 255;

export interface RamBlock {
  name: string;
  /** The block's used_length in bytes (whole pages). */
  bytes: number;
  /** Its first page in the proxy's flat page space (blocks back to back, in stream order). */
  firstPage: number;
  pages: number;
}

/** What the stream's head (file header … the ram section's START) says. */
export interface QemuStreamHead {
  machine: string;
  capabilities: string[];
  blocks: RamBlock[];
  pageCount: number;
  /** The ram section's id. */
  sectionId: number;
  /** Sections end with a footer (0x7e, id). */
  footers: boolean;
  /** The source opened its return path (OPEN_RETURN_PATH): it waits for the destination's SHUT. */
  returnPath: boolean;
}

export type RamRecordKind = "zero" | "page" | "xbzrle";

export interface QemuStreamHandler {
  /** The head is complete: `bytes` is it, verbatim (to be replayed to the destination QEMU). */
  onHead(bytes: Uint8Array, head: QemuStreamHead): void;
  /** A PING command (the source waits for no answer, but answering it is QEMU's behaviour). */
  onPing?(value: number): void;
  /**
   * One RAM record. `data`: the fill byte (zero), the 4096 bytes (page) or the XBZRLE
   * encoding (xbzrle) — a view valid during the call only.
   */
  onPage(page: number, kind: RamRecordKind, data: Uint8Array | number): void;
  /** The RAM section's completion record began: QEMU has stopped the guest. */
  onCompletion(): void;
  /** A PART or END section's records ended (EOS). */
  onSectionEnd(completion: boolean): void;
  /** Bytes after the ram section's END (device state, EOF, VM description), as they come. */
  onTail(bytes: Uint8Array): void;
}

const INCOMPLETE = Symbol("incomplete");

/** Big-endian reads over one buffer that throw INCOMPLETE past its end. */
class Reader {
  readonly data: Uint8Array;
  p: number;
  constructor(data: Uint8Array, p: number) {
    this.data = data;
    this.p = p;
  }
  need(n: number): void {
    if (this.p + n > this.data.length) throw INCOMPLETE;
  }
  peek(): number {
    this.need(1);
    return this.data[this.p];
  }
  u8(): number {
    this.need(1);
    return this.data[this.p++];
  }
  u16(): number {
    this.need(2);
    const d = this.data;
    const v = (d[this.p] << 8) | d[this.p + 1];
    this.p += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const d = this.data;
    const v = ((d[this.p] << 24) | (d[this.p + 1] << 16) | (d[this.p + 2] << 8) | d[this.p + 3]) >>> 0;
    this.p += 4;
    return v;
  }
  /** A be64 as [high, low] u32 words. */
  u64(): [number, number] {
    return [this.u32(), this.u32()];
  }
  bytes(n: number): Uint8Array {
    this.need(n);
    const v = this.data.subarray(this.p, this.p + n);
    this.p += n;
    return v;
  }
  name(len: number): string {
    return latin1(this.bytes(len));
  }
}

function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

const malformed = (msg: string) => new QemuStreamError("QEMU_STREAM_MALFORMED", `QEMU stream: ${msg}`);
const unsupported = (msg: string) => new QemuStreamError("QEMU_STREAM_UNSUPPORTED", `QEMU stream: ${msg}`);

type State = "head" | "top" | "records" | "tail" | "failed";

/**
 * An incremental reader of one QEMU migration stream: push() its bytes as they arrive, in
 * chunks of any size; the handler sees the head, each RAM record, the completion and the
 * opaque tail, in stream order. Throws QemuStreamError on the first thing it cannot
 * carry; after that it refuses further input.
 */
export class QemuStreamParser {
  readonly #h: QemuStreamHandler;
  #state: State = "head";
  #head: Uint8Array[] = [];
  #headBytes = 0;
  #info: QemuStreamHead | null = null;
  #byName = new Map<string, RamBlock>();
  #block: RamBlock | null = null;
  #completion = false;
  #rest: Uint8Array = new Uint8Array(0);
  /** PINGs of the head (told after it: the head is read again until complete). */
  #pings: number[] = [];
  /** Bytes pushed so far. */
  bytes = 0;
  records = 0;

  constructor(handler: QemuStreamHandler) {
    this.#h = handler;
  }

  get head(): QemuStreamHead | null {
    return this.#info;
  }

  /** True once the RAM section's completion record began. */
  get completing(): boolean {
    return this.#completion;
  }

  /** True once the whole RAM part was read (only opaque tail bytes follow). */
  get inTail(): boolean {
    return this.#state === "tail";
  }

  push(chunk: Uint8Array): void {
    if (this.#state === "failed") throw malformed("input after an error");
    this.bytes += chunk.length;
    try {
      if (this.#state === "head") {
        this.#head.push(chunk.slice());
        this.#headBytes += chunk.length;
        const all = concat(this.#head, this.#headBytes);
        const end = this.#readHead(all);
        if (end < 0) {
          if (this.#headBytes > MAX_HEAD_BYTES)
            throw malformed(`no ram section within the first ${MAX_HEAD_BYTES} bytes`);
          return;
        }
        this.#head = [];
        this.#h.onHead(all.subarray(0, end), this.#info!);
        for (const v of this.#pings) this.#h.onPing?.(v);
        this.#state = "top";
        chunk = all.subarray(end);
      }
      if (this.#rest.length) {
        // finish the item cut by the last chunk on a small joined buffer, then go on in place
        const take = Math.min(chunk.length, 2 * (PAGE_SIZE + 8 + 1 + MAX_NAME));
        const joined = new Uint8Array(this.#rest.length + take);
        joined.set(this.#rest);
        joined.set(chunk.subarray(0, take), this.#rest.length);
        const used = this.#items(joined);
        if (used < this.#rest.length) {
          if (take < chunk.length) throw malformed("a record longer than any QEMU writes");
          this.#rest = joined.slice(used);
          return;
        }
        chunk = chunk.subarray(used - this.#rest.length);
        this.#rest = new Uint8Array(0);
      }
      const used = this.#items(chunk);
      this.#rest = chunk.slice(used);
    } catch (err) {
      this.#state = "failed";
      throw err;
    }
  }

  /**
   * The stream ended (the source closed it). Throws unless it ended inside the opaque tail,
   * the only place QEMU ends a stream.
   */
  end(): void {
    if (this.#state !== "tail" && this.#state !== "failed")
      throw malformed(`ended ${this.#state === "head" ? "inside its head" : "before RAM completion"}`);
  }

  /** Parses complete items from data[0…]; returns the bytes consumed. */
  #items(data: Uint8Array): number {
    let p = 0;
    while (p < data.length) {
      if (this.#state === "tail") {
        this.#h.onTail(data.subarray(p));
        return data.length;
      }
      const r = new Reader(data, p);
      try {
        if (this.#state === "records") this.#record(r);
        else this.#section(r);
      } catch (err) {
        if (err === INCOMPLETE) return p;
        throw err;
      }
      p = r.p;
    }
    return p;
  }

  /** The head: returns its length, or -1 while incomplete. */
  #readHead(all: Uint8Array): number {
    const r = new Reader(all, 0);
    try {
      const magic = r.u32();
      if (magic !== QEMU_FILE_MAGIC)
        throw malformed(`file magic 0x${magic.toString(16)}, want 0x${QEMU_FILE_MAGIC.toString(16)} ("QEVM")`);
      const version = r.u32();
      if (version !== QEMU_FILE_VERSION)
        throw unsupported(`file version ${version}; the proxy reads version ${QEMU_FILE_VERSION} (QEMU 2.x–9.x)`);
      // the head is read again from its start with each chunk until it is complete
      this.#pings = [];
      this.#byName.clear();
      const info: QemuStreamHead = {
        machine: "",
        capabilities: [],
        blocks: [],
        pageCount: 0,
        sectionId: -1,
        footers: false,
        returnPath: false,
      };
      let first = true;
      for (;;) {
        const type = r.u8();
        if (type === QemuSection.CONFIGURATION) {
          if (!first) throw malformed("a configuration section after the first item");
          this.#configuration(r, info);
        } else if (type === QemuSection.COMMAND) {
          this.#command(r, info);
        } else if (type === QemuSection.START) {
          this.#ramStart(r, info);
          this.#info = info;
          return r.p;
        } else {
          throw type === QemuSection.FULL || type === QemuSection.EOF
            ? unsupported(
                `no ram section before ${type === QemuSection.EOF ? "the end" : "the device state"} (a snapshot, or RAM not migrated?)`,
              )
            : malformed(`section type 0x${type.toString(16)} in the stream's head`);
        }
        first = false;
      }
    } catch (err) {
      if (err === INCOMPLETE) return -1;
      throw err;
    }
  }

  #configuration(r: Reader, info: QemuStreamHead): void {
    const len = r.u32();
    if (len > MAX_NAME) throw malformed(`machine name of ${len} bytes`);
    info.machine = r.name(len);
    while (r.peek() === QemuSection.SUBSECTION) {
      r.u8();
      const name = r.name(r.u8());
      r.u32(); // version
      if (name === "configuration/target-page-bits") {
        const bits = r.u32();
        // 2 ** bits, not 1 << bits: JS shifts mod 32 (44 would pass as 12)
        if (2 ** bits !== PAGE_SIZE) throw unsupported(`target page of 2^${bits} bytes; the proxy carries 4 KiB pages`);
      } else if (name === "configuration/capabilities") {
        const n = r.u32();
        if (n > 64) throw malformed(`${n} capabilities in the configuration`);
        for (let i = 0; i < n; i++) info.capabilities.push(r.name(r.u8()));
        if (info.capabilities.includes("x-ignore-shared"))
          throw unsupported("x-ignore-shared is on: shared RAM is not in the stream, and the proxy rebuilds all of it");
      } else if (name === "configuration/uuid") {
        r.bytes(16);
      } else {
        throw unsupported(`configuration subsection '${name}'`);
      }
    }
  }

  #command(r: Reader, info: QemuStreamHead | null): void {
    const cmd = r.u16();
    const len = r.u16();
    // judged by its header, before its data: the cause is named however long the data claims to be
    if (cmd === QemuCommand.OPEN_RETURN_PATH) {
      if (len !== 0) throw malformed(`OPEN_RETURN_PATH with ${len} bytes`);
      if (info) info.returnPath = true;
      else throw unsupported("OPEN_RETURN_PATH after the RAM section began");
    } else if (cmd === QemuCommand.PING) {
      if (len !== 4) throw malformed(`PING with ${len} bytes`);
      const v = r.u32();
      if (info) this.#pings.push(v);
      else this.#h.onPing?.(v);
    } else {
      throw REFUSED_COMMANDS[cmd]
        ? unsupported(`command ${REFUSED_COMMANDS[cmd]}: the proxy carries pre-copy only`)
        : malformed(`unknown command ${cmd}`);
    }
  }

  /** The ram section's START: its header (type byte read), block list, EOS, footer. */
  #ramStart(r: Reader, info: QemuStreamHead): void {
    const id = r.u32();
    const idstr = r.name(r.u8());
    r.u32(); // instance id
    const version = r.u32();
    if (idstr !== "ram")
      throw unsupported(`iterative section '${idstr}' (block migration, dirty bitmaps, …): the proxy carries only RAM`);
    if (version !== RAM_SECTION_VERSION)
      throw unsupported(`ram section version ${version}; the proxy reads version ${RAM_SECTION_VERSION}`);
    const [th, tl] = r.u64();
    if ((tl & 0xfff) !== RamFlag.MEM_SIZE)
      throw malformed(`ram setup starts with flags 0x${(tl & 0xfff).toString(16)}, want MEM_SIZE`);
    const total = th * 2 ** 32 + ((tl & ~0xfff) >>> 0);
    // the head is read again from its start until it is complete: nothing is kept from a partial read
    const byName = new Map<string, RamBlock>();
    let sum = 0;
    while (sum < total) {
      const len = r.u8();
      if (len === 0) throw malformed("a RAM block with an empty name");
      const name = r.name(len);
      const [bh, bl] = r.u64();
      const bytes = bh * 2 ** 32 + bl;
      if (bytes === 0 || bytes % PAGE_SIZE !== 0 || sum + bytes > total)
        throw malformed(`RAM block '${name}' of ${bytes} bytes (total ${total}, listed so far ${sum})`);
      if (byName.has(name)) throw malformed(`RAM block '${name}' listed twice`);
      const block: RamBlock = { name, bytes, firstPage: sum / PAGE_SIZE, pages: bytes / PAGE_SIZE };
      info.blocks.push(block);
      byName.set(name, block);
      sum += bytes;
    }
    if (total / PAGE_SIZE > 2 ** 30) throw unsupported(`${total} bytes of RAM`);
    const [, eos] = r.u64();
    if (eos !== RamFlag.EOS) throw unsupported(`ram setup record 0x${eos.toString(16)} after the block list`);
    info.sectionId = id;
    info.pageCount = total / PAGE_SIZE;
    info.footers = r.peek() === QemuSection.FOOTER;
    if (info.footers) this.#footer(r, id);
    this.#byName = byName;
  }

  #footer(r: Reader, id: number): void {
    const b = r.u8();
    if (b !== QemuSection.FOOTER) throw malformed(`section ${id} ends without its footer (0x${b.toString(16)})`);
    const fid = r.u32();
    if (fid !== id) throw malformed(`footer of section ${fid} ends section ${id}`);
  }

  /** A section after the head: a PART or END of ram, or a command. */
  #section(r: Reader): void {
    const type = r.u8();
    const info = this.#info!;
    if (type === QemuSection.PART || type === QemuSection.END) {
      const id = r.u32();
      if (id !== info.sectionId)
        throw unsupported(`an iterative section ${id} besides ram (${info.sectionId}): the proxy carries only RAM`);
      if (type === QemuSection.END) {
        this.#completion = true;
        this.#h.onCompletion();
      }
      this.#state = "records";
    } else if (type === QemuSection.COMMAND) {
      this.#command(r, null);
    } else if (type === QemuSection.FULL) {
      throw unsupported("a device section before RAM completion");
    } else if (type === QemuSection.START) {
      throw unsupported("a second iterative section (block migration, dirty bitmaps, …): the proxy carries only RAM");
    } else {
      throw malformed(`section type 0x${type.toString(16)} before RAM completion`);
    }
  }

  /** One RAM record, or the EOS (and footer) that ends the section. */
  #record(r: Reader): void {
    const [hi, lo] = r.u64();
    const flags = lo & 0xfff;
    if (flags === RamFlag.EOS) {
      if (this.#info!.footers) this.#footer(r, this.#info!.sectionId);
      this.#state = this.#completion ? "tail" : "top";
      this.#h.onSectionEnd(this.#completion);
      return;
    }
    const kind = flags & ~RamFlag.CONTINUE;
    if (kind !== RamFlag.ZERO && kind !== RamFlag.PAGE && kind !== RamFlag.XBZRLE) {
      if (kind & RamFlag.COMPRESS_PAGE) throw unsupported("compressed pages (the compress capability)");
      if (kind & RamFlag.MULTIFD_FLUSH) throw unsupported("multifd");
      if (kind & RamFlag.HOOK) throw unsupported("RAM hooks (RDMA)");
      throw malformed(`RAM record flags 0x${flags.toString(16)}`);
    }
    let block = this.#block;
    if (!(flags & RamFlag.CONTINUE)) {
      const name = r.name(r.u8());
      block = this.#byName.get(name) ?? null;
      if (!block) throw malformed(`RAM record for unknown block '${name}'`);
    } else if (!block) {
      throw malformed("a CONTINUE record with no block before it");
    }
    const offset = hi * 2 ** 32 + ((lo & ~0xfff) >>> 0);
    if (offset >= block.bytes)
      throw malformed(`RAM record at offset ${offset} of block '${block.name}' (${block.bytes} bytes)`);
    let data: Uint8Array | number;
    if (kind === RamFlag.ZERO) data = r.u8();
    else if (kind === RamFlag.PAGE) data = r.bytes(PAGE_SIZE);
    else {
      const enc = r.u8();
      if (enc !== XBZRLE_ENCODING) throw malformed(`XBZRLE record with encoding flags 0x${enc.toString(16)}`);
      const len = r.u16();
      if (len === 0 || len > PAGE_SIZE) throw malformed(`XBZRLE record of ${len} bytes`);
      data = r.bytes(len);
    }
    // the record is complete: only now does it count
    this.#block = block;
    this.records++;
    this.#h.onPage(
      block.firstPage + offset / PAGE_SIZE,
      kind === RamFlag.ZERO ? "zero" : kind === RamFlag.PAGE ? "page" : "xbzrle",
      data,
    );
  }
}

/** The parts as one buffer (the part itself when there is one). */
export function concat(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Where a stream's opaque tail ends: true when `tail` (everything after the ram section's
 * END) ends exactly with QEMU's EOF and VM description (0x00, 0x06, be32 len, a JSON object
 * of len bytes with a "devices" list). QEMU writes nothing after it and waits for its
 * return path; the device sections before it have no length, so this is the only end a
 * reader that does not know every device's layout can see.
 */
export function tailComplete(tail: Uint8Array): boolean {
  const n = tail.length;
  if (n < 7 || tail[n - 1] !== 0x7d /* } */) return false;
  for (let i = n - 7; i >= 0; i--) {
    if (tail[i] !== QemuSection.EOF || tail[i + 1] !== QemuSection.VMDESCRIPTION || tail[i + 6] !== 0x7b /* { */)
      continue;
    const len = ((tail[i + 2] << 24) | (tail[i + 3] << 16) | (tail[i + 4] << 8) | tail[i + 5]) >>> 0;
    if (len !== n - i - 6) continue;
    try {
      const desc = JSON.parse(new TextDecoder().decode(tail.subarray(i + 6)));
      if (desc && Array.isArray(desc.devices)) return true;
    } catch {
      // not the description: device data that looks like its start
    }
  }
  return false;
}
