// Seeded fuzzing of the QEMU stream parser: valid synthetic streams and a real QEMU 7.2
// stream prefix, mutated (bit flips, byte overwrites, truncation, insertion, targeted
// length/flag/id fields, chunk splits). Properties: only QemuStreamError escapes, with one
// of its codes; onPage pages are inside the head's page space and the data has the length
// its kind requires; the input is never written; the whole stream and any chunking of it
// report the same (including the same error); after an error no input is taken; no more
// reports than input bytes. The parser is synchronous, so a loop that reports nothing would
// stall the run rather than fail it: every item it reads consumes at least one byte.
// QEMU_STREAM_FUZZ=200000 QEMU_STREAM_FUZZ_MS=1e9 QEMU_STREAM_FUZZ_SEED=n for a long run.
import { readFileSync } from "node:fs";
import { brotliDecompressSync } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import { PAGE_SIZE } from "../../src/kernel/abi.js";
import type { Kernel } from "../../src/kernel/kernel.js";
import { loadKernel } from "../../src/kernel/loader.js";
import { QemuStreamError, type QemuStreamHead } from "../../src/qemu/qemu-stream.js";
import { RamSectionWriter } from "../../src/qemu/ram-section-writer.js";
import {
  ByteWriter,
  buildStream,
  bytesLine,
  eventLines,
  FLAG,
  parseStream,
  randomSpec,
  tailBytes,
  vmDescription,
  type Field,
  type Transcript,
} from "../support/qemu-stream-builder.js";
import { randInt, rng } from "../support/random.js";

const CASES = Number(process.env.QEMU_STREAM_FUZZ ?? 3000);
function must(ok: boolean, what: string): void {
  if (!ok) throw new Error(`fuzz property broken: ${what}`);
}
const BUDGET_MS = Number(process.env.QEMU_STREAM_FUZZ_MS ?? 14_000);
const CODES = new Set(["QEMU_STREAM_MALFORMED", "QEMU_STREAM_UNSUPPORTED"]);

let k: Kernel;
beforeAll(async () => {
  k = await loadKernel();
});

interface Base {
  what: string;
  bytes: Uint8Array;
  fields: Field[];
}

/** The real prefix, made a whole stream: its section ended, an END section and a tail after it. */
function realStream(): Base {
  const prefix = new Uint8Array(
    brotliDecompressSync(readFileSync(new URL("fixtures/qemu-7.2-stream-prefix.bin.br", import.meta.url))),
  );
  const got = parseStream(prefix);
  const head = got.head as QemuStreamHead;
  const writer = new RamSectionWriter(head);
  const memory = new Uint8Array(head.pageCount * PAGE_SIZE);
  memory.fill(0x5a, 3 * PAGE_SIZE, 4 * PAGE_SIZE);
  const last = head.pageCount - 1;
  const end = writer.section([0, 3, head.blocks[1].firstPage, last], memory, (p) => p !== 3, true);
  const w = new ByteWriter().bytes(prefix).u64(FLAG.EOS);
  if (head.footers) w.u8(0x7e).u32(head.sectionId);
  const bytes = w
    .bytes(end)
    .bytes(tailBytes(new Uint8Array([4, 0, 0, 0, 9]), vmDescription(2)))
    .done();
  // the fields of the real head: block lengths (a be64 after each name) and the ram total
  const fields: Field[] = [];
  const headBytes = got.headBytes!;
  for (const b of head.blocks) {
    const name = new TextEncoder().encode(b.name);
    for (let i = 1; i + name.length + 8 <= headBytes.length; i++)
      if (headBytes[i - 1] === name.length && name.every((c, j) => headBytes[i + j] === c))
        fields.push({ what: "block length", at: i + name.length, size: 8 });
  }
  return { what: "real prefix", bytes, fields };
}

/** Values a length/flag/id field is set to: edges and near misses. */
function fieldValue(r: () => number, f: Field, old: bigint): bigint {
  const edges = [0n, 1n, 4095n, 4096n, 4097n, 0xffffn, 0xffffffffn, 2n ** 63n, 2n ** 64n - 1n];
  const roll = r();
  if (roll < 0.3) return edges[randInt(r, edges.length)];
  if (roll < 0.6) return old + BigInt(randInt(r, 3) - 1) * (f.size >= 8 ? 4096n : 1n);
  if (roll < 0.8 && f.what === "record header")
    // another combination of RAM flags on the same offset
    return (
      (old & ~0xfffn) |
      BigInt([0, 2, 4, 8, 0x10, 0x20, 0x22, 0x28, 0x40, 0x60, 0x80, 0x100, 0x200, 0xfff][randInt(r, 14)])
    );
  return BigInt(randInt(r, 2 ** 32)) ** BigInt(1 + randInt(r, 2));
}

function mutate(r: () => number, base: Base): Uint8Array {
  let b: Uint8Array = base.bytes.slice();
  for (let n = 1 + (r() < 0.3 ? randInt(r, 4) : 0); n > 0; n--) {
    const op = randInt(r, 6);
    const at = randInt(r, b.length);
    if (op === 0) {
      for (let i = 1 + randInt(r, 4); i > 0; i--) b[randInt(r, b.length)] ^= 1 << randInt(r, 8);
    } else if (op === 1) {
      b[at] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 0x10, 0x20, 0x7e, 0xff][randInt(r, 13)] ?? randInt(r, 256);
    } else if (op === 2) {
      b = b.slice(0, at);
    } else if (op === 3) {
      const ins = Uint8Array.from({ length: 1 + randInt(r, 16) }, () => randInt(r, 256));
      b = new ByteWriter().bytes(b.subarray(0, at)).bytes(ins).bytes(b.subarray(at)).done();
    } else if (op === 4) {
      // a slice of the stream repeated elsewhere (a record or section twice)
      const from = randInt(r, b.length);
      const piece = b.slice(from, from + 1 + randInt(r, 5000));
      b = new ByteWriter().bytes(b.subarray(0, at)).bytes(piece).bytes(b.subarray(at)).done();
    } else if (base.fields.length) {
      const f = base.fields[randInt(r, base.fields.length)];
      if (f.at + f.size > b.length) continue;
      let old = 0n;
      for (let i = 0; i < f.size; i++) old = (old << 8n) | BigInt(b[f.at + i]);
      let v = BigInt.asUintN(8 * f.size, fieldValue(r, f, old));
      for (let i = f.size - 1; i >= 0; i--, v >>= 8n) b[f.at + i] = Number(v & 0xffn);
    }
  }
  return b;
}

/** Parses `bytes` whole and in random chunks, checking every handler call; returns both transcripts. */
function fuzzOne(r: () => number, bytes: Uint8Array): [Transcript, Transcript] {
  const copy = bytes.slice();
  // plain checks, not expect(): they run for every record of every case
  const check = (t: Transcript, call: string, args: unknown[]) => {
    if (call === "head") {
      const h = args[1] as QemuStreamHead;
      must(t.head === null, "a second onHead");
      must(h.blocks.reduce((s, b) => s + b.bytes, 0) === h.pageCount * PAGE_SIZE, "blocks do not add up to pageCount");
      return;
    }
    must(t.head !== null, `${call} before the head`);
    // every report consumes input: more reports than bytes would be a loop
    must(t.events.length <= bytes.length, "more reports than input bytes");
    if (call === "page") {
      const [page, kind, data] = args as [number, string, number | Uint8Array];
      must(Number.isInteger(page) && page >= 0 && page < t.head!.pageCount, `page ${page} of ${t.head!.pageCount}`);
      if (kind === "zero") must(typeof data === "number" && data >= 0 && data < 256, `zero fill ${data}`);
      else if (kind === "page") must(data instanceof Uint8Array && data.length === PAGE_SIZE, "page data length");
      else {
        must(kind === "xbzrle", `record kind ${kind}`);
        const n = (data as Uint8Array).length;
        must(n >= 1 && n <= PAGE_SIZE, `xbzrle of ${n} bytes`);
      }
    } else if (call === "completion") {
      must(!t.events.some((e) => e.ev === "completion"), "a second completion");
    } else if (call === "tail") {
      const last = t.events.at(-1);
      must(last?.ev === "sectionEnd" && last.completion, "tail before the END section ended");
    }
  };
  const whole = parseStream(bytes, undefined, check);
  // tiny chunks cost a copy of the cut record per push: 1-byte chunking is in qemu-stream.test.ts
  const sizes = [16, 700, 4097, 9000, 65536][randInt(r, 5)];
  const chunked = parseStream(bytes, () => 1 + randInt(r, sizes), check);
  for (const t of [whole, chunked]) {
    if (t.error === null) continue;
    if (!(t.error instanceof QemuStreamError)) throw t.error; // any other error is a bug: show it
    expect(CODES.has(t.error.code), t.error.code).toBe(true);
    expect(t.error.message).toMatch(/^QEMU stream: /);
    if (t.atEnd) continue;
    // refused: no more input, and nothing reported for it
    const before = t.events.length;
    expect(() => t.parser.push(new Uint8Array([0]))).toThrow(QemuStreamError);
    expect(t.events.length).toBe(before);
  }
  // the parser never writes its input (Buffer.equals: toEqual walks a typed array element by element, slowly)
  expect(Buffer.from(bytes).equals(copy), "input changed").toBe(true);
  return [whole, chunked];
}

/** A report as short lines (a diff of raw pages would take minutes to print). */
function summary(t: Transcript): string[] {
  return [
    t.error instanceof QemuStreamError ? `${t.error.code}: ${t.error.message}` : `error ${t.error}`,
    JSON.stringify(t.head),
    bytesLine(t.headBytes),
    ...eventLines(t.events),
    `tail ${bytesLine(t.tail)}`,
  ];
}

describe("QemuStreamParser fuzz", () => {
  it(`${CASES} mutated streams: typed refusals, pages in range, the same in any chunks`, () => {
    const r = rng(Number(process.env.QEMU_STREAM_FUZZ_SEED ?? 0x5eed));
    const bases: Base[] = [realStream()];
    for (let i = 0; i < 6; i++) {
      const s = buildStream(randomSpec(r, k, { records: 4 + randInt(r, 10) }));
      bases.push({ what: `synthetic ${i}`, bytes: s.bytes, fields: s.fields });
    }
    // the bases themselves parse cleanly
    for (const b of bases) {
      const [whole] = fuzzOne(r, b.bytes);
      expect(whole.error, b.what).toBeNull();
    }
    const outcomes = new Map<string, number>();
    const started = performance.now();
    let i = 0;
    for (; i < CASES; i++) {
      // a loaded machine runs fewer cases (each still the same function of the seed), never less than a third
      if (i >= CASES / 3 && performance.now() - started > BUDGET_MS) break;
      const base = bases[i % bases.length];
      const bytes = mutate(r, base);
      const [whole, chunked] = fuzzOne(r, bytes);
      expect(summary(chunked), `case ${i} (${base.what}, ${bytes.length} bytes)`).toEqual(summary(whole));
      const key =
        whole.error instanceof QemuStreamError
          ? `${whole.error.code} ${whole.error.message.replace(/[\d']+.*/, "")}`
          : "ok";
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    }
    const ms = performance.now() - started;
    // the mutations reach past the head: refusals of records and of the sections after it
    const seen = [...outcomes.keys()].join("\n");
    expect(seen).toMatch(/RAM record/);
    expect(seen).toMatch(/XBZRLE record/);
    expect(seen).toMatch(/footer/);
    expect(outcomes.get("ok") ?? 0).toBeGreaterThan(i / 50);
    console.log(
      `${i} cases in ${ms.toFixed(0)} ms: ${[...outcomes.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 12)
        .map(([key, n]) => `${n} ${key.trim()}`)
        .join("; ")}`,
    );
  }, 60_000);
});
