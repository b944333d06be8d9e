// The page applier: its kernel (guest RAM in kernel memory) against its JS path (any other
// memory) on payloads of every record kind, the whole-memory digest it keeps as pages are
// written (pre-copy and post-copy) against a full recomputation, ZERO records on pages
// that are already zero, the typed errors of bad payloads, and onPage.
import { beforeAll, describe, expect, it } from "vitest";
import { emptyCounts, selectAllCodecs } from "../../src/codec/codecs.js";
import { EncodePipeline } from "../../src/codec/encode-pipeline.js";
import { PageApplier } from "../../src/codec/page-applier.js";
import { MemoryDigest } from "../../src/engine/digest.js";
import { loadKernel, PAGE_SIZE, PagewireError, WasmGuestMemory, type Kernel } from "../../src/index.js";
import type { GuestMemory } from "../../src/memory/guest-memory.js";
import { PageRecordWriter, RecordKind } from "../../src/wire/page-record.js";
import { ArrayMemory } from "../support/array-memory.js";
import { fillRandom, makeRunPage } from "../support/pairs.js";
import { randInt, rng } from "../support/random.js";
import { refRleEncode, refXbzrleEncode } from "../support/xbzrle-oracle.js";

let k: Kernel;
beforeAll(async () => {
  k = await loadKernel();
});

const P = 128;
const SEED = 0x5eed_0000_1234n;

/** The content of every page of `m`, page after page. */
function contents(m: GuestMemory): Uint8Array {
  const out = new Uint8Array(m.pageCount * PAGE_SIZE);
  m.readPages(
    Array.from({ length: m.pageCount }, (_, i) => i),
    out,
  );
  return out;
}

function fullDigest(m: GuestMemory, seed = SEED): string {
  const d = new MemoryDigest(k, m.pageCount, seed);
  try {
    d.updateFrom(m);
    return d.digest();
  } finally {
    d.dispose();
  }
}

/** A page of one of the kinds the encode pipeline turns into each record kind. */
function nextPage(r: () => number, cur: Uint8Array): Uint8Array<ArrayBufferLike> {
  const p = new Uint8Array(PAGE_SIZE);
  const kind = randInt(r, 6);
  if (kind === 0) return p; // zero
  if (kind === 1) fillRandom(r, p);
  else if (kind === 2) makeRunPage(r, p);
  else if (kind === 3)
    fillRandom(rng(7 + randInt(r, 4)), p); // duplicates
  else {
    p.set(cur); // a few bytes changed
    for (let t = 1 + randInt(r, 20); t > 0; t--) p[randInt(r, PAGE_SIZE)] ^= 1 + randInt(r, 255);
  }
  return p;
}

/**
 * Payloads of every record kind: `rounds` rounds of the encode pipeline over a changing
 * source (returned as it is at the end), then crafted records the pipeline does not make
 * (ZERO over data, DEDUP naming another guest and any page, XBZRLE against the page the
 * destination holds).
 */
function makePayloads(seed: number, rounds: number) {
  const r = rng(seed);
  const source: Uint8Array<ArrayBufferLike>[] = Array.from({ length: P }, () => new Uint8Array(PAGE_SIZE));
  const pipeline = new EncodePipeline(k, P, { ...selectAllCodecs(), hashSeed: 3n, xbzrleCacheBytes: 1 << 20 }, 32);
  const writer = new PageRecordWriter(1 << 16);
  const payloads: Uint8Array[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      pipeline.beginRound(round);
      const list: number[] = [];
      for (let p = 0; p < P; p++) if (round === 0 || r() < 0.3) list.push(p);
      for (let i = 0; i < list.length; i += 32) {
        const pages = Uint32Array.from(list.slice(i, i + 32));
        const snap = pipeline.snapshotView(pages.length);
        pages.forEach((p, j) => {
          source[p] = nextPage(r, source[p]);
          snap.set(source[p], j * PAGE_SIZE);
        });
        writer.begin(round);
        pipeline.encode(pages, pages.length, writer, emptyCounts());
        payloads.push(writer.finish());
      }
    }
  } finally {
    pipeline.dispose();
  }
  return { source, payloads };
}

/** The kernel path and the JS path side by side, each with its digest. */
function destinations(guests?: ReadonlyMap<number, GuestMemory>) {
  const ram = new WasmGuestMemory(k, P);
  const array = new ArrayMemory(P);
  const digests = [new MemoryDigest(k, P, SEED), new MemoryDigest(k, P, SEED)];
  const appliers = [
    new PageApplier(k, ram, { digest: digests[0], guests }),
    new PageApplier(k, array, { digest: digests[1], guests }),
  ];
  return {
    ram,
    array,
    digests,
    appliers,
    apply(payload: Uint8Array, onPage?: (page: number) => void) {
      const n = appliers[0].apply(payload, onPage);
      expect(appliers[1].apply(payload)).toBe(n);
      return n;
    },
    dispose() {
      ram.dispose();
      for (const d of digests) d.dispose();
    },
  };
}

describe("PageApplier: kernel and JS paths, incremental digest", () => {
  it("pre-copy: every record kind; both paths give the source's pages and the digest of a full recomputation", () => {
    const other = new WasmGuestMemory(k, 16); // guest 1 at this destination
    const r = rng(9);
    for (let p = 0; p < 16; p++) fillRandom(r, other.pageView(p));
    const d = destinations(new Map([[1, other]]));
    try {
      const { source, payloads } = makePayloads(1, 8);
      let records = 0;
      for (const payload of payloads) records += d.apply(payload);
      const want = new Uint8Array(P * PAGE_SIZE);
      source.forEach((page, p) => want.set(page, p * PAGE_SIZE));
      expect(Buffer.from(contents(d.ram)).equals(Buffer.from(want))).toBe(true);
      expect(Buffer.from(d.array.bytes).equals(Buffer.from(want))).toBe(true);

      // what the pipeline does not send: ZERO over data, DEDUP of any page of either guest, XBZRLE
      const w = new PageRecordWriter(1 << 16);
      w.begin(0);
      w.add(RecordKind.ZERO, 5);
      w.add(RecordKind.ZERO, 5); // again: the page is zero now
      w.addDedup(6, 1, 3);
      w.addDedup(7, 0, 9);
      w.addDedup(8, 0, 8);
      const old = contents(d.ram).slice(10 * PAGE_SIZE, 11 * PAGE_SIZE);
      const cur = old.slice();
      cur[100] ^= 0xff;
      w.add(RecordKind.XBZRLE, 10, refXbzrleEncode(old, cur) as Uint8Array);
      const run = new Uint8Array(PAGE_SIZE).fill(0xcc);
      w.add(RecordKind.RLE, 11, refRleEncode(run, PAGE_SIZE) as Uint8Array);
      w.addDedup(12, 1, 15);
      expect(d.apply(w.finish())).toBe(8);
      records += 8;
      expect(Buffer.from(contents(d.ram)).equals(Buffer.from(d.array.bytes))).toBe(true);
      expect(Buffer.from(d.ram.pageView(6)).equals(Buffer.from(other.pageView(3)))).toBe(true);
      expect(d.ram.pageView(10)[100]).toBe(cur[100]);

      // the digest kept as pages were written is the digest of the memory, with no pass over it
      for (const digest of d.digests) expect(digest.hashedPages).toBe(P);
      const full = fullDigest(d.ram);
      expect(d.digests[0].digest()).toBe(full);
      expect(d.digests[1].digest()).toBe(full);
      // every record wrote its page once, but ZERO records on zero pages, which wrote nothing
      expect(d.appliers[0].zeroPagesUnwritten).toBeGreaterThan(0);
      expect(d.appliers[1].zeroPagesUnwritten).toBe(d.appliers[0].zeroPagesUnwritten);
      expect(d.array.writes).toBe(records - d.appliers[1].zeroPagesUnwritten);
    } finally {
      d.dispose();
      other.dispose();
    }
  });

  it("post-copy: present pages hashed at the switch, arrivals as written; the digest is the source's at the pause", () => {
    const d = destinations();
    try {
      // pre-copy rounds, then the source pauses (`source` is its memory at the pause)
      const { source, payloads } = makePayloads(2, 4);
      for (const payload of payloads) d.apply(payload);
      const r = rng(4);
      const missing = new Set<number>();
      // at the switch: some pages are missing (they will arrive); the others are final
      for (let p = 0; p < P; p++) if (r() < 0.4) missing.add(p);
      for (const digest of d.digests) digest.updateMissing(d.ram, (p) => !missing.has(p));
      // the destination guest writes present pages: the digest must not see it
      for (let t = 0; t < 50; t++) {
        const p = randInt(r, P);
        if (missing.has(p)) continue;
        d.ram.pageView(p)[randInt(r, PAGE_SIZE)] ^= 0x55;
        d.array.bytes[p * PAGE_SIZE + randInt(r, PAGE_SIZE)] ^= 0x55;
      }
      // arrivals: the missing pages as they are at the pause, sent with sendAll (zero, RLE, raw, XBZRLE)
      const w = new PageRecordWriter(1 << 16);
      const pipeline = new EncodePipeline(k, P, { ...selectAllCodecs(), hashSeed: 5n }, 32);
      try {
        pipeline.beginRound(0, true, true);
        const list = Uint32Array.from([...missing]);
        for (let j = 0; j < list.length; j += 32) {
          const pages = list.subarray(j, j + 32);
          const snap = pipeline.snapshotView(pages.length);
          pages.forEach((p, x) => snap.set(source[p], x * PAGE_SIZE));
          w.begin(9);
          pipeline.encode(pages, pages.length, w, emptyCounts());
          const arrived: number[] = [];
          d.apply(w.finish(), (page) => arrived.push(page));
          expect(arrived).toEqual([...pages]);
        }
      } finally {
        pipeline.dispose();
      }
      const atPause = new ArrayMemory(P);
      source.forEach((page, p) => atPause.writePage(p, page));
      const want = fullDigest(atPause);
      expect(d.digests[0].digest()).toBe(want);
      expect(d.digests[1].digest()).toBe(want);
    } finally {
      d.dispose();
    }
  });

  it("COMPLETE hashes only pages no record wrote, and all of them with another seed", () => {
    const d = destinations();
    try {
      const w = new PageRecordWriter(1 << 16);
      w.begin(0);
      for (let p = 0; p < P; p += 2) w.add(RecordKind.RAW, p, new Uint8Array(PAGE_SIZE).fill(p));
      d.apply(w.finish());
      expect(d.digests[0].hashedPages).toBe(P / 2);
      d.digests[0].updateMissing(d.ram);
      expect(d.digests[0].hashedPages).toBe(P);
      expect(d.digests[0].digest()).toBe(fullDigest(d.ram));
      const other = new MemoryDigest(k, P, 77n);
      other.updateMissing(d.ram);
      expect(other.digest()).toBe(fullDigest(d.ram, 77n));
      other.dispose();
    } finally {
      d.dispose();
    }
  });
});

describe("PageApplier: ZERO records", () => {
  it("write nothing on a page that is already zero (JS path: no writePage)", () => {
    const m = new ArrayMemory(8);
    m.writePage(3, new Uint8Array(PAGE_SIZE).fill(1));
    m.writes = 0;
    const a = new PageApplier(k, m);
    const w = new PageRecordWriter(1 << 12);
    w.begin(0);
    for (let p = 0; p < 8; p++) w.add(RecordKind.ZERO, p);
    a.apply(w.finish());
    expect(m.writes).toBe(1); // page 3 only
    expect(a.zeroPagesUnwritten).toBe(7);
    expect(m.bytes.every((b) => b === 0)).toBe(true);
  });

  it("write nothing on a page that is already zero (kernel path: the kernel counts them)", () => {
    const m = new WasmGuestMemory(k, 8);
    m.writePage(3, new Uint8Array(PAGE_SIZE).fill(1));
    const a = new PageApplier(k, m);
    const w = new PageRecordWriter(1 << 12);
    w.begin(0);
    for (let p = 0; p < 8; p++) w.add(RecordKind.ZERO, p);
    expect(a.apply(w.finish())).toBe(8);
    expect(a.zeroPagesUnwritten).toBe(7);
    expect(m.bytes().every((b) => b === 0)).toBe(true);
    m.dispose();
  });
});

describe("PageApplier: bad payloads", () => {
  /** Payloads each with a bad record after a good one. */
  function badPayloads(): Array<[string, Uint8Array]> {
    const good = (w: PageRecordWriter) => w.add(RecordKind.RAW, 1, new Uint8Array(PAGE_SIZE).fill(9));
    const make = (build: (w: PageRecordWriter) => void, edit?: (b: Uint8Array, v: DataView) => void) => {
      const w = new PageRecordWriter(1 << 14);
      w.begin(0);
      good(w);
      build(w);
      const b = w.finish();
      edit?.(b, new DataView(b.buffer));
      return b;
    };
    const raw2 = 8 + 8 + PAGE_SIZE; // offset of the second record
    return [
      ["short payload", new Uint8Array(5)],
      [
        "header past the end",
        make(
          (w) => w.add(RecordKind.ZERO, 2),
          (_, v) => v.setUint32(4, 3, true),
        ),
      ],
      [
        "unknown kind",
        make(
          (w) => w.add(RecordKind.ZERO, 2),
          (b) => (b[raw2] = 7),
        ),
      ],
      ["page out of range", make((w) => w.add(RecordKind.ZERO, P))],
      [
        "body past the end",
        make(
          (w) => w.add(RecordKind.RLE, 2, new Uint8Array([1, 0])),
          (_, v) => v.setUint16(raw2 + 2, 9, true),
        ),
      ],
      ["zero with a body", make((w) => w.add(RecordKind.ZERO, 2, new Uint8Array(1)))],
      ["raw too short", make((w) => w.add(RecordKind.RAW, 2, new Uint8Array(100)))],
      ["empty xbzrle", make((w) => w.add(RecordKind.XBZRLE, 2, new Uint8Array(0)))],
      ["oversize xbzrle", make((w) => w.add(RecordKind.XBZRLE, 2, new Uint8Array(PAGE_SIZE + 1)))],
      ["dedup of 4 bytes", make((w) => w.add(RecordKind.DEDUP, 2, new Uint8Array(4)))],
      [
        "trailing bytes",
        make(
          (w) => w.add(RecordKind.ZERO, 2),
          (_, v) => v.setUint32(4, 1, true),
        ),
      ],
      ["dedup source out of range", make((w) => w.addDedup(2, 0, P))],
      ["dedup of an unknown guest", make((w) => w.addDedup(2, 5, 1))],
      ["corrupt xbzrle", make((w) => w.add(RecordKind.XBZRLE, 2, new Uint8Array([0, 0, 1])))],
      ["corrupt rle", make((w) => w.add(RecordKind.RLE, 2, new Uint8Array([3, 1])))],
    ];
  }

  for (const [name, payload] of badPayloads())
    it(`${name}: the kernel path throws what the JS path throws, after the same records`, () => {
      const d = destinations();
      try {
        const r = rng(3);
        for (let p = 0; p < P; p++) {
          const page = new Uint8Array(PAGE_SIZE);
          fillRandom(r, page);
          d.ram.writePage(p, page);
          d.array.writePage(p, page);
        }
        const pagesSeen: number[][] = [[], []];
        const errors = d.appliers.map((a, i) => {
          try {
            a.apply(payload, (p) => pagesSeen[i].push(p));
          } catch (e) {
            return e;
          }
          return null;
        });
        expect(errors[0]).toBeInstanceOf(PagewireError);
        expect(errors[0]?.constructor).toBe(errors[1]?.constructor);
        expect((errors[0] as PagewireError).code).toBe((errors[1] as PagewireError).code);
        expect((errors[0] as Error).message).toBe((errors[1] as Error).message);
        expect(pagesSeen[0]).toEqual(pagesSeen[1]);
        expect(pagesSeen[0]).toEqual(name === "short payload" ? [] : name === "header past the end" ? [1, 2] : [1]);
        expect(Buffer.from(contents(d.ram)).equals(Buffer.from(d.array.bytes))).toBe(true);
      } finally {
        d.dispose();
      }
    });
});
