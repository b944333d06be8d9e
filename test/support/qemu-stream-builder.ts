// Synthetic QEMU 7.2 migration streams for the stream parser's tests and fuzzing, written
// from the format (savevm.c, ram.c) independently of src/qemu: a ByteWriter for raw pieces,
// and buildStream(spec) for a whole stream plus what a parser must report for it (the
// oracle) and where its length/flag/id fields sit (for targeted mutation).
import { createHash } from "node:crypto";
import { encodeXbzrle } from "../../src/codec/xbzrle.js";
import { PAGE_SIZE } from "../../src/kernel/abi.js";
import type { Kernel } from "../../src/kernel/kernel.js";
import { QemuStreamParser, type QemuStreamHead } from "../../src/qemu/qemu-stream.js";
import { fillRandom } from "./pairs.js";
import { randInt } from "./random.js";

/** A growable big-endian byte writer. */
export class ByteWriter {
  #buf = new Uint8Array(1024);
  length = 0;

  #room(n: number): void {
    if (this.length + n <= this.#buf.length) return;
    const b = new Uint8Array(Math.max(2 * this.#buf.length, this.length + n));
    b.set(this.#buf.subarray(0, this.length));
    this.#buf = b;
  }
  u8(v: number): this {
    this.#room(1);
    this.#buf[this.length++] = v & 0xff;
    return this;
  }
  u16(v: number): this {
    return this.u8(v >>> 8).u8(v);
  }
  u32(v: number): this {
    return this.u16(v >>> 16).u16(v & 0xffff);
  }
  /** A be64 from a non-negative integer (exact up to 2^53) or a bigint. */
  u64(v: number | bigint): this {
    const b = BigInt(v);
    return this.u32(Number(b >> 32n) >>> 0).u32(Number(b & 0xffffffffn));
  }
  bytes(b: ArrayLike<number>): this {
    this.#room(b.length);
    this.#buf.set(b, this.length);
    this.length += b.length;
    return this;
  }
  /** Latin-1 characters, no length. */
  text(s: string): this {
    for (let i = 0; i < s.length; i++) this.u8(s.charCodeAt(i));
    return this;
  }
  /** QEMU's short string: u8 length, characters. */
  name(s: string): this {
    return this.u8(s.length).text(s);
  }
  done(): Uint8Array {
    return this.#buf.slice(0, this.length);
  }
}

export const MAGIC = 0x5145564d; // "QEVM"
export const SEC = { EOF: 0, START: 1, PART: 2, END: 3, FULL: 4, SUB: 5, DESC: 6, CONFIG: 7, CMD: 8, FOOTER: 0x7e };
export const FLAG = {
  MEM_SIZE: 0x04,
  ZERO: 0x02,
  PAGE: 0x08,
  EOS: 0x10,
  CONTINUE: 0x20,
  XBZRLE: 0x40,
  HOOK: 0x80,
  COMPRESS: 0x100,
  MULTIFD: 0x200,
};

export function fileHeader(w: ByteWriter, version = 3, magic = MAGIC): ByteWriter {
  return w.u32(magic).u32(version);
}

/** The configuration section: machine name, then subsections (each: name, version, body). */
export function configuration(
  w: ByteWriter,
  machine: string,
  subsections: { name: string; body: Uint8Array }[] = [],
): ByteWriter {
  w.u8(SEC.CONFIG).u32(machine.length).text(machine);
  for (const s of subsections) w.u8(SEC.SUB).name(s.name).u32(1).bytes(s.body);
  return w;
}

export function capabilitiesSubsection(names: string[]): { name: string; body: Uint8Array } {
  const b = new ByteWriter().u32(names.length);
  for (const n of names) b.name(n);
  return { name: "configuration/capabilities", body: b.done() };
}

export function command(w: ByteWriter, cmd: number, data: ArrayLike<number> = []): ByteWriter {
  return w.u8(SEC.CMD).u16(cmd).u16(data.length).bytes(data);
}

export function ping(w: ByteWriter, value: number): ByteWriter {
  return command(w, 2, new ByteWriter().u32(value).done());
}

export interface BlockSpec {
  name: string;
  pages: number;
}

/** The ram section's START (type byte included) with its block list, EOS and footer. */
export function ramStart(
  w: ByteWriter,
  o: { id: number; blocks: BlockSpec[]; footers: boolean; idstr?: string; version?: number; fields?: Field[] },
): ByteWriter {
  w.u8(SEC.START)
    .u32(o.id)
    .name(o.idstr ?? "ram")
    .u32(0)
    .u32(o.version ?? 4);
  const total = o.blocks.reduce((s, b) => s + b.pages * PAGE_SIZE, 0);
  o.fields?.push({ what: "ram total", at: w.length, size: 8 });
  w.u64(total + FLAG.MEM_SIZE);
  for (const b of o.blocks) {
    w.name(b.name);
    o.fields?.push({ what: "block length", at: w.length, size: 8 });
    w.u64(b.pages * PAGE_SIZE);
  }
  w.u64(FLAG.EOS);
  if (o.footers) w.u8(SEC.FOOTER).u32(o.id);
  return w;
}

/** A RAM record's header: be64 offset|flags, then (without CONTINUE) the block name. */
export function recordHeader(w: ByteWriter, offset: number, flags: number, block: string | null): ByteWriter {
  w.u64(BigInt(offset) | BigInt(flags));
  if (block !== null) w.name(block);
  return w;
}

export function eos(w: ByteWriter, footerId: number | null): ByteWriter {
  w.u64(FLAG.EOS);
  if (footerId !== null) w.u8(SEC.FOOTER).u32(footerId);
  return w;
}

/** Fake device sections, QEMU's EOF and the VM description (what follows the END section). */
export function tailBytes(device: Uint8Array, description: unknown): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(description));
  return new ByteWriter().bytes(device).u8(SEC.EOF).u8(SEC.DESC).u32(json.length).bytes(json).done();
}

export type RecordSpec = { block: string; page: number; name?: boolean } & (
  | { kind: "zero"; fill?: number }
  | { kind: "page"; data: Uint8Array }
  | { kind: "xbzrle"; data: Uint8Array }
);

export interface SectionSpec {
  end: boolean;
  /** PING values sent as commands before this section. */
  pings?: number[];
  records: RecordSpec[];
}

export interface StreamSpec {
  machine: string;
  capabilities?: string[];
  returnPath?: boolean;
  headPings?: number[];
  blocks: BlockSpec[];
  sectionId: number;
  footers: boolean;
  sections: SectionSpec[];
  device: Uint8Array;
  description: unknown;
}

/** What a parser reports, in order (page data copied). */
export type StreamEvent =
  | { ev: "ping"; value: number }
  | { ev: "page"; page: number; kind: "zero" | "page" | "xbzrle"; data: number | Uint8Array }
  | { ev: "completion" }
  | { ev: "sectionEnd"; completion: boolean };

/** A length, flag or id field of the built stream. */
export interface Field {
  what: string;
  at: number;
  size: number;
}

export interface BuiltStream {
  bytes: Uint8Array;
  headLength: number;
  head: {
    machine: string;
    capabilities: string[];
    blocks: { name: string; bytes: number; firstPage: number; pages: number }[];
    pageCount: number;
    sectionId: number;
    footers: boolean;
    returnPath: boolean;
  };
  /** Events after onHead (head PINGs first, as the parser tells them after the head). */
  events: StreamEvent[];
  tail: Uint8Array;
  fields: Field[];
}

export function buildStream(spec: StreamSpec): BuiltStream {
  const fields: Field[] = [];
  const w = fileHeader(new ByteWriter());
  configuration(w, spec.machine, spec.capabilities ? [capabilitiesSubsection(spec.capabilities)] : []);
  if (spec.returnPath) command(w, 1);
  for (const v of spec.headPings ?? []) ping(w, v);
  ramStart(w, { id: spec.sectionId, blocks: spec.blocks, footers: spec.footers, fields });
  const headLength = w.length;
  const blocks: BuiltStream["head"]["blocks"] = [];
  let first = 0;
  for (const b of spec.blocks) {
    blocks.push({ name: b.name, bytes: b.pages * PAGE_SIZE, firstPage: first, pages: b.pages });
    first += b.pages;
  }
  const byName = new Map(blocks.map((b) => [b.name, b]));
  const events: StreamEvent[] = (spec.headPings ?? []).map((value) => ({ ev: "ping", value }));
  let last: string | null = null; // QEMU's loader remembers the block across sections
  for (const s of spec.sections) {
    for (const v of s.pings ?? []) {
      ping(w, v);
      events.push({ ev: "ping", value: v });
    }
    fields.push({ what: "section id", at: w.length + 1, size: 4 });
    w.u8(s.end ? SEC.END : SEC.PART).u32(spec.sectionId);
    if (s.end) events.push({ ev: "completion" });
    for (const r of s.records) {
      const named = r.name || r.block !== last;
      const flags =
        (r.kind === "zero" ? FLAG.ZERO : r.kind === "page" ? FLAG.PAGE : FLAG.XBZRLE) | (named ? 0 : FLAG.CONTINUE);
      fields.push({ what: "record header", at: w.length, size: 8 });
      recordHeader(w, r.page * PAGE_SIZE, flags, named ? r.block : null);
      last = r.block;
      let data: number | Uint8Array;
      if (r.kind === "zero") w.u8((data = r.fill ?? 0));
      else if (r.kind === "page") w.bytes((data = r.data));
      else {
        w.u8(1);
        fields.push({ what: "xbzrle length", at: w.length, size: 2 });
        w.u16(r.data.length).bytes((data = r.data));
      }
      events.push({ ev: "page", page: byName.get(r.block)!.firstPage + r.page, kind: r.kind, data });
    }
    fields.push({ what: "eos", at: w.length, size: 8 });
    eos(w, spec.footers ? spec.sectionId : null);
    if (spec.footers) fields.push({ what: "footer id", at: w.length - 4, size: 4 });
    events.push({ ev: "sectionEnd", completion: s.end });
  }
  const tail = tailBytes(spec.device, spec.description);
  w.bytes(tail);
  return {
    bytes: w.done(),
    headLength,
    head: {
      machine: spec.machine,
      capabilities: spec.capabilities ?? [],
      blocks,
      pageCount: first,
      sectionId: spec.sectionId,
      footers: spec.footers,
      returnPath: !!spec.returnPath,
    },
    events,
    tail,
    fields,
  };
}

/** A VM description like QEMU's (the JSON object after EOF). */
export function vmDescription(devices: number): unknown {
  return {
    page_size: PAGE_SIZE,
    devices: Array.from({ length: devices }, (_, i) => ({
      name: `dev${i}`,
      instance_id: 0,
      vmsd_name: `dev${i}`,
      version: 1,
      fields: [{ name: "f", type: "uint32", size: 4 }],
    })),
  };
}

/**
 * A random but valid stream: blocks with names of 1, a few and 255 characters, PART
 * sections (ZERO, PAGE and XBZRLE records from the kernel's encoder, CONTINUE where the
 * block repeats), PINGs, one END section and a tail.
 */
export function randomSpec(r: () => number, k: Kernel, o: { records?: number } = {}): StreamSpec {
  const names = ["pc.ram", "m", "/rom@etc/acpi/tables", "x".repeat(255), `b${randInt(r, 1000)}`].slice(
    0,
    2 + randInt(r, 4),
  );
  const blocks = names.map((name, i) => ({ name, pages: i === 0 ? 16 + randInt(r, 64) : 1 + randInt(r, 8) }));
  const old = new Uint8Array(PAGE_SIZE);
  const now = new Uint8Array(PAGE_SIZE);
  const enc = new Uint8Array(PAGE_SIZE);
  const record = (): RecordSpec => {
    const b = blocks[r() < 0.6 ? 0 : randInt(r, blocks.length)];
    const page = randInt(r, b.pages);
    const roll = r();
    if (roll < 0.35) return { block: b.name, page, kind: "zero" };
    if (roll < 0.65) {
      const data = new Uint8Array(PAGE_SIZE);
      fillRandom(r, data);
      return { block: b.name, page, kind: "page", data };
    }
    // an XBZRLE delta as QEMU's encoder writes it: a few changed runs of a random page
    fillRandom(r, old);
    now.set(old);
    for (let i = 1 + randInt(r, 6); i > 0; i--) {
      const at = randInt(r, PAGE_SIZE - 64);
      for (let j = randInt(r, 64); j >= 0; j--) now[at + j] ^= 1 + randInt(r, 255);
    }
    const n = encodeXbzrle(k, old, now, enc);
    if (n <= 0) return { block: b.name, page, kind: "zero" };
    return { block: b.name, page, kind: "xbzrle", data: enc.slice(0, n) };
  };
  const total = o.records ?? 6 + randInt(r, 20);
  const parts = 1 + randInt(r, 3);
  const sections: SectionSpec[] = [];
  let left = total;
  for (let i = 0; i <= parts; i++) {
    const end = i === parts;
    const n = end ? left : Math.min(left, randInt(r, left + 1));
    left -= n;
    sections.push({
      end,
      pings: r() < 0.3 ? [randInt(r, 2 ** 32)] : [],
      records: Array.from({ length: n }, record),
    });
  }
  const device = Uint8Array.from({ length: randInt(r, 300) }, () => randInt(r, 256));
  return {
    machine: r() < 0.5 ? "pc-i440fx-7.2" : "pc-q35-7.2",
    capabilities: r() < 0.5 ? ["events", "return-path"].slice(0, 1 + randInt(r, 2)) : undefined,
    returnPath: r() < 0.5,
    headPings: r() < 0.3 ? [randInt(r, 2 ** 32)] : [],
    blocks,
    sectionId: randInt(r, 100),
    footers: r() < 0.8,
    sections,
    device,
    description: vmDescription(1 + randInt(r, 5)),
  };
}

/** What a parser reported for one stream (page data copied), and how it ended. */
export interface Transcript {
  headBytes: Uint8Array | null;
  head: QemuStreamHead | null;
  events: StreamEvent[];
  tail: Uint8Array;
  /** The first error push() or end() threw, or null. */
  error: unknown;
  /** Whether that error came from end() (the parser still takes input then: end() marks nothing). */
  atEnd: boolean;
}

/**
 * Feeds `bytes` to a fresh parser in the chunks `split` cuts (lengths ≥ 1), then end() when
 * no error came; `check` sees each call to the handler as it happens.
 */
export function parseStream(
  bytes: Uint8Array,
  split: (left: number) => number = (left) => left,
  check?: (t: Transcript, call: string, args: unknown[]) => void,
): Transcript & { parser: QemuStreamParser } {
  const t: Transcript = {
    headBytes: null,
    head: null,
    events: [],
    tail: new Uint8Array(0),
    error: null,
    atEnd: false,
  };
  const tails: Uint8Array[] = [];
  const parser = new QemuStreamParser({
    onHead(b, h) {
      check?.(t, "head", [b, h]);
      t.headBytes = b.slice();
      t.head = h;
    },
    onPing(value) {
      check?.(t, "ping", [value]);
      t.events.push({ ev: "ping", value });
    },
    onPage(page, kind, data) {
      check?.(t, "page", [page, kind, data]);
      t.events.push({ ev: "page", page, kind, data: typeof data === "number" ? data : data.slice() });
    },
    onCompletion() {
      check?.(t, "completion", []);
      t.events.push({ ev: "completion" });
    },
    onSectionEnd(completion) {
      check?.(t, "sectionEnd", [completion]);
      t.events.push({ ev: "sectionEnd", completion });
    },
    onTail(b) {
      check?.(t, "tail", [b]);
      tails.push(b.slice());
    },
  });
  try {
    for (let o = 0; o < bytes.length; ) {
      const n = Math.max(1, Math.min(split(bytes.length - o), bytes.length - o));
      parser.push(bytes.subarray(o, o + n));
      o += n;
    }
    t.atEnd = true;
    parser.end();
  } catch (err) {
    t.error = err;
  }
  t.tail = new Uint8Array(tails.reduce((s, b) => s + b.length, 0));
  let o = 0;
  for (const b of tails) {
    t.tail.set(b, o);
    o += b.length;
  }
  return Object.assign(t, { parser });
}

const digest = (b: Uint8Array) => createHash("sha256").update(b).digest("hex").slice(0, 16);

/**
 * Events as short lines, page data by length and digest: comparable at once (expect's
 * toEqual walks typed arrays element by element) and a diff of them prints quickly.
 */
export function eventLines(events: StreamEvent[]): string[] {
  return events.map((e) =>
    e.ev === "page"
      ? `page ${e.page} ${e.kind} ${typeof e.data === "number" ? e.data : `${e.data.length}B ${digest(e.data)}`}`
      : JSON.stringify(e),
  );
}

/** Bytes as a short comparable line. */
export function bytesLine(b: Uint8Array | null): string {
  return b ? `${b.length}B ${digest(b)}` : "none";
}
