// The QEMU migration stream parser, RAM section writer, return path and endpoint forms,
// without QEMU: synthetic streams from test/support/qemu-stream-builder.ts (written from the
// format, not from src/qemu) and a real QEMU 7.2 stream prefix (test/qemu/fixtures).
import { readFileSync } from "node:fs";
import { brotliDecompressSync } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import { encodeXbzrle } from "../../src/codec/xbzrle.js";
import { PAGE_SIZE } from "../../src/kernel/abi.js";
import type { Kernel } from "../../src/kernel/kernel.js";
import { loadKernel } from "../../src/kernel/loader.js";
import { parseEndpoint } from "../../src/qemu/endpoint.js";
import { QemuStreamError, tailComplete, type QemuStreamHead } from "../../src/qemu/qemu-stream.js";
import { RamSectionWriter } from "../../src/qemu/ram-section-writer.js";
import { ReturnPathMessage, ReturnPathReader, returnPathMessage, returnPathValue } from "../../src/qemu/return-path.js";
import {
  ByteWriter,
  buildStream,
  capabilitiesSubsection,
  command,
  configuration,
  eos,
  FLAG,
  fileHeader,
  parseStream,
  randomSpec,
  ramStart,
  recordHeader,
  SEC,
  tailBytes,
  vmDescription,
  bytesLine,
  eventLines,
  type BuiltStream,
  type StreamEvent,
  type StreamSpec,
} from "../support/qemu-stream-builder.js";
import { randInt, rng } from "../support/random.js";

let k: Kernel;
beforeAll(async () => {
  k = await loadKernel();
});

/** The real stream prefix: QEMU 7.2's head and the first 40 records of its first PART section. */
const REAL_PREFIX = new Uint8Array(
  brotliDecompressSync(readFileSync(new URL("fixtures/qemu-7.2-stream-prefix.bin.br", import.meta.url))),
);

function fixedSpec(): StreamSpec {
  const r = rng(7);
  const page = (fill: number) => new Uint8Array(PAGE_SIZE).fill(fill);
  const old = new Uint8Array(PAGE_SIZE);
  for (let i = 0; i < PAGE_SIZE; i++) old[i] = randInt(r, 256);
  const now = old.slice();
  now.fill(0xee, 100, 140);
  now[4000] ^= 0xff;
  const enc = new Uint8Array(PAGE_SIZE);
  const n = encodeXbzrle(k, old, now, enc);
  expect(n).toBeGreaterThan(0);
  const xb = enc.slice(0, n);
  return {
    machine: "pc-i440fx-7.2",
    capabilities: ["events"],
    returnPath: true,
    headPings: [0x01020304],
    blocks: [
      { name: "pc.ram", pages: 8 },
      { name: "v", pages: 2 },
      { name: "/rom@etc/acpi/tables", pages: 3 },
    ],
    sectionId: 2,
    footers: true,
    sections: [
      {
        end: false,
        records: [
          { block: "pc.ram", page: 0, kind: "zero" },
          { block: "pc.ram", page: 7, kind: "page", data: page(0x11) },
          { block: "v", page: 1, kind: "xbzrle", data: xb },
          { block: "v", page: 0, kind: "zero", fill: 0x5a },
          { block: "/rom@etc/acpi/tables", page: 2, kind: "page", data: page(0x22) },
        ],
      },
      {
        end: false,
        pings: [0xfffffffe],
        // the block carries over from the last section: CONTINUE on the first record
        records: [{ block: "/rom@etc/acpi/tables", page: 0, kind: "zero" }],
      },
      {
        end: true,
        records: [
          { block: "pc.ram", page: 3, kind: "page", data: page(0x33) },
          { block: "pc.ram", page: 4, kind: "xbzrle", data: xb },
          { block: "pc.ram", page: 4, kind: "zero", name: true },
        ],
      },
    ],
    device: Uint8Array.from([SEC.FULL, 0, 0, 0, 3, 5, ...new TextEncoder().encode("timer"), 1, 2, 3]),
    description: vmDescription(3),
  };
}

function expectSame(got: ReturnType<typeof parseStream>, want: BuiltStream, what: string): void {
  expect(got.error, what).toBeNull();
  expect(bytesLine(got.headBytes), what).toBe(bytesLine(want.bytes.subarray(0, want.headLength)));
  expect(got.head, what).toEqual(want.head);
  expect(eventLines(got.events), what).toEqual(eventLines(want.events));
  expect(bytesLine(got.tail), what).toBe(bytesLine(want.tail));
}

/** Chunkings every stream must parse the same under. */
function chunkings(seed: number): [string, (left: number) => number][] {
  const r = rng(seed);
  return [
    ["whole", (left) => left],
    ["1 byte", () => 1],
    ["7 bytes", () => 7],
    ["4097 bytes", () => 4097],
    ["random", () => 1 + randInt(r, r() < 0.5 ? 16 : 9000)],
  ];
}

describe("QemuStreamParser on synthetic streams", () => {
  it("reports the head, every record, pings, completion and the tail, under every chunking", () => {
    const s = buildStream(fixedSpec());
    for (const [what, split] of chunkings(1)) {
      const got = parseStream(s.bytes, split);
      expectSame(got, s, what);
      expect(got.parser.completing).toBe(true);
      expect(got.parser.inTail).toBe(true);
      expect(got.parser.bytes).toBe(s.bytes.length);
      expect(got.parser.records).toBe(9);
    }
    // the builder's oracle itself, on the points the spec fixes
    const head = s.head;
    expect(head.blocks.map((b) => b.firstPage)).toEqual([0, 8, 10]);
    expect(head.pageCount).toBe(13);
    const pages = s.events.filter((e) => e.ev === "page").map((e) => e.ev === "page" && [e.page, e.kind]);
    expect(pages).toEqual([
      [0, "zero"],
      [7, "page"],
      [9, "xbzrle"],
      [8, "zero"],
      [12, "page"],
      [10, "zero"],
      [3, "page"],
      [4, "xbzrle"],
      [4, "zero"],
    ]);
  });

  it("stops at the right place: handler order, completion before the END's records, head pings after onHead", () => {
    const s = buildStream(fixedSpec());
    const order: string[] = [];
    const got = parseStream(
      s.bytes,
      () => 3,
      (_t, call) => {
        if (call !== "tail" || order.at(-1) !== "tail") order.push(call);
      },
    );
    expect(got.error).toBeNull();
    const sectionEnds = order.flatMap((c, i) => (c === "sectionEnd" ? [i] : []));
    expect(order[0]).toBe("head");
    expect(order[1]).toBe("ping"); // the head's PING comes after onHead
    expect(order.indexOf("completion")).toBeGreaterThan(sectionEnds[1]);
    expect(order.indexOf("completion")).toBeLessThan(sectionEnds[2]);
    expect(order.at(-1)).toBe("tail");
    expect(order.filter((c) => c === "tail")).toHaveLength(1);
  });

  it("random valid streams parse the same in any chunks", () => {
    const r = rng(42);
    for (let i = 0; i < 40; i++) {
      const s = buildStream(randomSpec(r, k));
      for (const [what, split] of chunkings(100 + i)) {
        if (what === "1 byte" && i % 8) continue; // byte-wise is slow: a few streams suffice
        expectSame(parseStream(s.bytes, split), s, `stream ${i}, ${what}`);
      }
    }
  });

  it("a stream without footers, capabilities or return path", () => {
    const spec = { ...fixedSpec(), footers: false, capabilities: undefined, returnPath: false, headPings: [] };
    const s = buildStream(spec);
    expect(s.head.footers).toBe(false);
    for (const [what, split] of chunkings(2)) expectSame(parseStream(s.bytes, split), s, what);
  });

  it("reads a real QEMU 7.2 stream prefix: blocks add up, every record inside, same under every chunking", () => {
    const whole = parseStream(REAL_PREFIX);
    // a prefix: it ends inside the first PART section
    expect(whole.error).toBeInstanceOf(QemuStreamError);
    expect((whole.error as QemuStreamError).code).toBe("QEMU_STREAM_MALFORMED");
    expect((whole.error as Error).message).toMatch(/before RAM completion/);
    const head = whole.head!;
    expect(head.machine).toMatch(/^pc-/);
    expect(head.blocks.reduce((s, b) => s + b.bytes, 0)).toBe(head.pageCount * PAGE_SIZE);
    let first = 0;
    for (const b of head.blocks) {
      expect(b.firstPage).toBe(first);
      first += b.pages;
    }
    const pages = whole.events.filter((e) => e.ev === "page");
    expect(pages.length).toBe(40);
    for (const e of pages) if (e.ev === "page") expect(e.page).toBeLessThan(head.pageCount);
    for (const [what, split] of chunkings(3)) {
      const got = parseStream(REAL_PREFIX, split);
      expect(got.head, what).toEqual(head);
      expect(eventLines(got.events), what).toEqual(eventLines(whole.events));
      expect(bytesLine(got.headBytes), what).toBe(bytesLine(whole.headBytes));
    }
  });
});

describe("RamSectionWriter", () => {
  /** A head as the parser reports it for `spec`. */
  function headOf(spec: StreamSpec): { head: QemuStreamHead; bytes: Uint8Array; tail: Uint8Array } {
    const s = buildStream(spec);
    const got = parseStream(s.bytes);
    expect(got.error).toBeNull();
    return { head: got.head!, bytes: got.headBytes!, tail: s.tail };
  }

  for (const footers of [true, false]) {
    it(`its sections parse back to exactly the pages written (footers ${footers})`, () => {
      const r = rng(footers ? 11 : 12);
      const { head, bytes, tail } = headOf({ ...fixedSpec(), footers, headPings: [] });
      const memory = new Uint8Array(head.pageCount * PAGE_SIZE);
      for (let p = 0; p < head.pageCount; p++)
        if (r() < 0.6) for (let i = 0; i < PAGE_SIZE; i += 97) memory[p * PAGE_SIZE + i] = 1 + randInt(r, 255);
      memory[(head.pageCount - 1) * PAGE_SIZE + PAGE_SIZE - 1] = 9; // the last byte of the last page counts too
      const isZero = (p: number) => memory.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE).every((b) => b === 0);
      const writer = new RamSectionWriter(head);
      const sections: number[][] = [[], [0, 1, 2, head.pageCount - 1]];
      for (let i = 0; i < 4; i++)
        sections.push(Array.from({ length: head.pageCount }, (_, p) => p).filter(() => r() < 0.5));
      sections.push(Array.from({ length: head.pageCount }, (_, p) => p)); // every page, across every block
      const parts = sections.map((pages, i) => writer.section(pages, memory, isZero, i === sections.length - 1));
      const stream = new ByteWriter().bytes(bytes);
      for (const s of parts) stream.bytes(s);
      stream.bytes(tail);
      const written = stream.done();
      expect(writer.bytes).toBe(parts.reduce((s, b) => s + b.length, 0));
      expect(writer.records).toBe(sections.reduce((s, p) => s + p.length, 0));
      const want = sections.flatMap((pages, i) => [
        ...(i === sections.length - 1 ? [{ ev: "completion" }] : []),
        ...pages.map((page) =>
          isZero(page)
            ? { ev: "page", page, kind: "zero", data: 0 }
            : { ev: "page", page, kind: "page", data: memory.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE) },
        ),
        { ev: "sectionEnd", completion: i === sections.length - 1 },
      ]);
      for (const [what, split] of chunkings(5)) {
        if (what === "1 byte") continue;
        const got = parseStream(written, split);
        expect(got.error, what).toBeNull();
        expect(eventLines(got.events), what).toEqual(eventLines(want as StreamEvent[]));
        expect(bytesLine(got.tail), what).toBe(bytesLine(tail));
      }
      // QEMU's writer sends the block name only on a block change: so must this one
      const all = parts.at(-1)!;
      let named = 0;
      for (const b of head.blocks) {
        const name = new TextEncoder().encode(b.name);
        for (let i = 0; i + name.length <= all.length; i++)
          if (all[i - 1] === name.length && name.every((c, j) => all[i + j] === c)) named++;
      }
      expect(named).toBe(head.blocks.length);
    });
  }
});

describe("tailComplete", () => {
  const tail = tailBytes(Uint8Array.from([SEC.FULL, 0, 0, 0, 1, 0, 6, 0, 0, 0, 2, 0x7b, 0x7d]), vmDescription(2));

  it("is true for a whole tail and false for every proper prefix", () => {
    expect(tailComplete(tail)).toBe(true);
    for (let n = 0; n < tail.length; n++) expect(tailComplete(tail.subarray(0, n)), `prefix of ${n}`).toBe(false);
  });

  it("is false with bytes after the description", () => {
    for (const extra of [[0], [0x7d], [0x20, 0x7d], [SEC.EOF, SEC.DESC]])
      expect(tailComplete(new Uint8Array([...tail, ...extra])), `+${extra}`).toBe(false);
  });

  it("is false for a description that is not QEMU's", () => {
    expect(tailComplete(tailBytes(new Uint8Array(3), { page_size: 4096 }))).toBe(false);
    expect(tailComplete(tailBytes(new Uint8Array(3), [1, 2]))).toBe(false);
    const bad = tail.slice();
    bad[bad.length - 2] = 0x2c; // "…],}": not JSON
    expect(tailComplete(bad)).toBe(false);
  });
});

describe("refusals", () => {
  const blocks = [
    { name: "pc.ram", pages: 4 },
    { name: "rom", pages: 1 },
  ];
  /** A stream's head (config, ram START with footers) up to the first section. */
  const head = (w = fileHeader(new ByteWriter())) =>
    ramStart(configuration(w, "pc-i440fx-7.2"), { id: 2, blocks, footers: true });
  /** The head, a PART section's header, then `records`. */
  const part = (records: (w: ByteWriter) => void) => {
    const w = head().u8(SEC.PART).u32(2);
    records(w);
    return w.done();
  };

  /** Every chunking refuses `bytes` with `code` and a message matching `msg`, and no more input after. */
  function refuses(bytes: Uint8Array, code: string, msg: RegExp, atEnd = false): void {
    for (const [what, split] of chunkings(9)) {
      const got = parseStream(bytes, split);
      const err = got.error as QemuStreamError;
      expect(err, what).toBeInstanceOf(QemuStreamError);
      expect(err.code, `${what}: ${err.message}`).toBe(code);
      expect(err.message, what).toMatch(msg);
      if (!atEnd) {
        expect(() => got.parser.push(new Uint8Array(1))).toThrow(/input after an error/);
        expect(() => got.parser.push(new Uint8Array(1))).toThrow(QemuStreamError);
      }
    }
  }

  it("the file's magic and version", () => {
    refuses(fileHeader(new ByteWriter(), 3, 0x51455645).u8(0).done(), "QEMU_STREAM_MALFORMED", /magic 0x51455645/);
    refuses(fileHeader(new ByteWriter(), 2).done(), "QEMU_STREAM_UNSUPPORTED", /file version 2/);
    refuses(fileHeader(new ByteWriter(), 4).done(), "QEMU_STREAM_UNSUPPORTED", /file version 4/);
  });

  it("configuration: x-ignore-shared, a page size other than 4 KiB, an unknown subsection", () => {
    const conf = (subs: { name: string; body: Uint8Array }[]) =>
      ramStart(configuration(fileHeader(new ByteWriter()), "pc", subs), { id: 2, blocks, footers: true }).done();
    refuses(
      conf([capabilitiesSubsection(["events", "x-ignore-shared"])]),
      "QEMU_STREAM_UNSUPPORTED",
      /x-ignore-shared/,
    );
    for (const bits of [13, 16, 44])
      refuses(
        conf([{ name: "configuration/target-page-bits", body: new ByteWriter().u32(bits).done() }]),
        "QEMU_STREAM_UNSUPPORTED",
        new RegExp(`2\\^${bits}`),
      );
    refuses(
      conf([{ name: "configuration/other", body: new Uint8Array(0) }]),
      "QEMU_STREAM_UNSUPPORTED",
      /'configuration\/other'/,
    );
    // the ones QEMU 7.2 writes are read
    const ok = conf([
      { name: "configuration/target-page-bits", body: new ByteWriter().u32(12).done() },
      { name: "configuration/uuid", body: new Uint8Array(16).fill(0xab) },
      capabilitiesSubsection(["events"]),
    ]);
    const got = parseStream(ok, () => 1);
    expect((got.error as Error).message).toMatch(/before RAM completion/);
    expect(got.head?.capabilities).toEqual(["events"]);
  });

  it("commands: post-copy, unknown, wrong lengths, OPEN_RETURN_PATH after the head", () => {
    const w = () => configuration(fileHeader(new ByteWriter()), "pc");
    refuses(command(w(), 3, new Uint8Array(16)).done(), "QEMU_STREAM_UNSUPPORTED", /POSTCOPY_ADVISE/);
    refuses(command(w(), 42).done(), "QEMU_STREAM_MALFORMED", /unknown command 42/);
    refuses(command(w(), 2, [1, 2, 3]).done(), "QEMU_STREAM_MALFORMED", /PING with 3 bytes/);
    refuses(command(w(), 1, [0]).done(), "QEMU_STREAM_MALFORMED", /OPEN_RETURN_PATH with 1 bytes/);
    refuses(command(head(), 1).done(), "QEMU_STREAM_UNSUPPORTED", /OPEN_RETURN_PATH after/);
    refuses(command(head(), 7).done(), "QEMU_STREAM_UNSUPPORTED", /POSTCOPY_RESUME/);
    // the cause is named at the command's header, however much data it claims
    refuses(
      new ByteWriter().bytes(command(head(), 99).done().subarray(0, -2)).u16(60000).done(),
      "QEMU_STREAM_MALFORMED",
      /unknown command 99/,
    );
  });

  it("sections: a non-ram START, ram version ≠ 4, a device section or a second START before completion", () => {
    const w = () => configuration(fileHeader(new ByteWriter()), "pc");
    refuses(
      ramStart(w(), { id: 3, blocks, footers: true, idstr: "block" }).done(),
      "QEMU_STREAM_UNSUPPORTED",
      /iterative section 'block'/,
    );
    refuses(
      ramStart(w(), { id: 3, blocks, footers: true, version: 3 }).done(),
      "QEMU_STREAM_UNSUPPORTED",
      /ram section version 3/,
    );
    refuses(head().u8(SEC.FULL).u32(5).done(), "QEMU_STREAM_UNSUPPORTED", /device section before RAM completion/);
    refuses(w().u8(SEC.FULL).u32(5).done(), "QEMU_STREAM_UNSUPPORTED", /no ram section before the device state/);
    refuses(head().u8(SEC.START).u32(5).done(), "QEMU_STREAM_UNSUPPORTED", /second iterative section/);
    refuses(head().u8(SEC.PART).u32(5).done(), "QEMU_STREAM_UNSUPPORTED", /iterative section 5 besides ram/);
    refuses(head().u8(SEC.EOF).done(), "QEMU_STREAM_MALFORMED", /section type 0x0 before RAM completion/);
    refuses(w().u8(0x33).done(), "QEMU_STREAM_MALFORMED", /section type 0x33 in the stream's head/);
  });

  it("the block list", () => {
    const start = (body: (w: ByteWriter) => void) => {
      const w = configuration(fileHeader(new ByteWriter()), "pc").u8(SEC.START).u32(2).name("ram").u32(0).u32(4);
      body(w);
      return w.done();
    };
    refuses(
      start((w) =>
        w
          .u64(2 * PAGE_SIZE + FLAG.MEM_SIZE)
          .name("a")
          .u64(100),
      ),
      "QEMU_STREAM_MALFORMED",
      /block 'a' of 100 bytes/,
    );
    refuses(
      start((w) =>
        w
          .u64(PAGE_SIZE + FLAG.MEM_SIZE)
          .name("a")
          .u64(2 * PAGE_SIZE),
      ),
      "QEMU_STREAM_MALFORMED",
      /block 'a' of 8192 bytes \(total 4096/,
    );
    refuses(
      start((w) =>
        w
          .u64(2 * PAGE_SIZE + FLAG.MEM_SIZE)
          .name("a")
          .u64(PAGE_SIZE)
          .name("a")
          .u64(PAGE_SIZE),
      ),
      "QEMU_STREAM_MALFORMED",
      /'a' listed twice/,
    );
    refuses(
      start((w) => w.u64(PAGE_SIZE + FLAG.MEM_SIZE).u8(0)),
      "QEMU_STREAM_MALFORMED",
      /empty name/,
    );
    refuses(
      start((w) => w.u64(PAGE_SIZE + FLAG.PAGE)),
      "QEMU_STREAM_MALFORMED",
      /flags 0x8, want MEM_SIZE/,
    );
  });

  it("records: flags the proxy does not carry", () => {
    const rec = (flags: number) => part((w) => recordHeader(w, 0, flags, "pc.ram").u8(0));
    refuses(rec(FLAG.COMPRESS), "QEMU_STREAM_UNSUPPORTED", /compress/);
    refuses(rec(FLAG.HOOK), "QEMU_STREAM_UNSUPPORTED", /RDMA/);
    refuses(rec(FLAG.MULTIFD), "QEMU_STREAM_UNSUPPORTED", /multifd/);
    refuses(rec(FLAG.ZERO | FLAG.PAGE), "QEMU_STREAM_MALFORMED", /RAM record flags 0xa/);
    refuses(rec(FLAG.MEM_SIZE), "QEMU_STREAM_MALFORMED", /RAM record flags 0x4/);
  });

  it("records: unknown block, offset past the block, CONTINUE without a block", () => {
    refuses(
      part((w) => recordHeader(w, 0, FLAG.ZERO, "nope").u8(0)),
      "QEMU_STREAM_MALFORMED",
      /unknown block 'nope'/,
    );
    refuses(
      part((w) => recordHeader(w, PAGE_SIZE, FLAG.ZERO, "rom").u8(0)),
      "QEMU_STREAM_MALFORMED",
      /offset 4096 of block 'rom' \(4096 bytes\)/,
    );
    refuses(
      part((w) => recordHeader(w, 2 ** 40, FLAG.ZERO, "pc.ram").u8(0)),
      "QEMU_STREAM_MALFORMED",
      /offset 1099511627776 of block 'pc.ram'/,
    );
    refuses(
      part((w) => recordHeader(w, 0, FLAG.ZERO | FLAG.CONTINUE, null).u8(0)),
      "QEMU_STREAM_MALFORMED",
      /CONTINUE record with no block/,
    );
  });

  it("records: XBZRLE with a bad encoding flag or length", () => {
    const xb = (enc: number, len: number) =>
      part((w) =>
        recordHeader(w, 0, FLAG.XBZRLE, "pc.ram")
          .u8(enc)
          .u16(len)
          .bytes(new Uint8Array(Math.min(len, 5000))),
      );
    refuses(xb(2, 10), "QEMU_STREAM_MALFORMED", /encoding flags 0x2/);
    refuses(xb(0, 10), "QEMU_STREAM_MALFORMED", /encoding flags 0x0/);
    refuses(xb(1, 0), "QEMU_STREAM_MALFORMED", /XBZRLE record of 0 bytes/);
    refuses(xb(1, 4097), "QEMU_STREAM_MALFORMED", /XBZRLE record of 4097 bytes/);
  });

  it("footers: missing or of another section", () => {
    refuses(
      part((w) => w.u64(FLAG.EOS).u8(SEC.PART)),
      "QEMU_STREAM_MALFORMED",
      /section 2 ends without its footer \(0x2\)/,
    );
    refuses(
      part((w) => w.u64(FLAG.EOS).u8(SEC.FOOTER).u32(9)),
      "QEMU_STREAM_MALFORMED",
      /footer of section 9 ends section 2/,
    );
    refuses(
      configuration(fileHeader(new ByteWriter()), "pc")
        .bytes(ramStart(new ByteWriter(), { id: 2, blocks, footers: false }).done())
        .bytes([SEC.FOOTER, 0, 0, 0, 3])
        .done(),
      "QEMU_STREAM_MALFORMED",
      /footer of section 3 ends section 2/,
    );
  });

  it("end() anywhere but in the tail", () => {
    refuses(fileHeader(new ByteWriter()).done(), "QEMU_STREAM_MALFORMED", /ended inside its head/, true);
    refuses(head().done(), "QEMU_STREAM_MALFORMED", /ended before RAM completion/, true);
    refuses(
      part(() => {}),
      "QEMU_STREAM_MALFORMED",
      /ended before RAM completion/,
      true,
    );
    refuses(head().u8(SEC.END).u32(2).done(), "QEMU_STREAM_MALFORMED", /ended/, true);
    // …and fine right after the END section: the tail may be empty so far
    expect(parseStream(eos(head().u8(SEC.END).u32(2), 2).u8(SEC.FULL).done()).error).toBeNull();
  });
});

describe("ReturnPathReader", () => {
  it("reads messages across every chunk boundary", () => {
    const msgs = [
      returnPathMessage(ReturnPathMessage.PONG, 7),
      new ByteWriter().u16(0x99).u16(0).done(),
      returnPathMessage(ReturnPathMessage.SHUT, 0),
      new ByteWriter().u16(3).u16(300).bytes(new Uint8Array(300).fill(3)).done(),
      returnPathMessage(ReturnPathMessage.SHUT, 0xfffffffe),
    ];
    const all = new ByteWriter();
    for (const m of msgs) all.bytes(m);
    const bytes = all.done();
    const want = [
      [2, 7],
      [0x99, 0],
      [1, 0],
      [3, 300],
      [1, 0xfffffffe],
    ];
    const read = (cuts: number[]) => {
      const got: number[][] = [];
      const rp = new ReturnPathReader((type, data) =>
        got.push([type, type === 1 || type === 2 ? returnPathValue(data) : data.length]),
      );
      let o = 0;
      for (const c of [...cuts, bytes.length]) {
        rp.push(bytes.subarray(o, c));
        o = c;
      }
      return got;
    };
    expect(read([])).toEqual(want);
    for (let c = 0; c <= bytes.length; c++) expect(read([c]), `cut at ${c}`).toEqual(want);
    expect(read(Array.from({ length: bytes.length }, (_, i) => i))).toEqual(want);
  });

  it("refuses an oversize message at its header and a value of the wrong length", () => {
    const rp = new ReturnPathReader(() => {
      throw new Error("no message is complete");
    });
    // QEMU's source refuses return-path messages over 512 bytes; nothing is buffered for one
    expect(() => rp.push(new ByteWriter().u16(1).u16(513).done())).toThrow(
      expect.objectContaining({ code: "QEMU_STREAM_MALFORMED", message: expect.stringMatching(/513 bytes/) }),
    );
    const big = new ReturnPathReader(() => {});
    expect(() => big.push(new ByteWriter().u16(2).u16(0xffff).done())).toThrow(QemuStreamError);
    expect(() => returnPathValue(new Uint8Array(3))).toThrow(
      expect.objectContaining({ code: "QEMU_STREAM_MALFORMED", message: expect.stringMatching(/3 bytes/) }),
    );
    expect(returnPathValue(returnPathMessage(ReturnPathMessage.SHUT, 0x80000001).subarray(4))).toBe(0x80000001);
  });
});

describe("parseEndpoint", () => {
  it("reads QEMU's tcp and unix forms", () => {
    expect(parseEndpoint("tcp:127.0.0.1:4444")).toEqual({ host: "127.0.0.1", port: 4444 });
    expect(parseEndpoint("tcp:localhost:0")).toEqual({ host: "localhost", port: 0 });
    expect(parseEndpoint("tcp:[::1]:65535")).toEqual({ host: "::1", port: 65535 });
    expect(parseEndpoint("unix:/tmp/a b.sock")).toEqual({ path: "/tmp/a b.sock" });
    expect(parseEndpoint("unix:rel")).toEqual({ path: "rel" });
  });

  it("refuses anything else with USAGE, naming the address", () => {
    for (const bad of [
      "",
      "unix:",
      "tcp:",
      "tcp:host",
      "tcp::4444",
      "tcp:host:",
      "tcp:host:65536",
      "tcp:host:-1",
      "tcp:host:80x",
      "tcp:::1:80",
      "exec:cat",
      "rdma:host:1",
      "TCP:host:1",
      "host:1",
    ])
      expect(() => parseEndpoint(bad), bad).toThrow(
        expect.objectContaining({ code: "USAGE", message: expect.stringContaining(`'${bad}'`) }),
      );
  });
});
