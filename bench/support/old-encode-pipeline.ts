// The encode pipeline and page applier as they were before the one-pass kernels
// (assembly/encode-pipeline.ts, assembly/page-applier.ts), kept for the benchmark and the
// "not worse than before" check only: JS stages over a packed snapshot (hash, filter,
// zero pass, dedup, XBZRLE batch, RLE batch, copies into the writer) and a JS applier
// (readPageRecords, one kernel call per record, no digest). Not used by src/.
import { DirtyBitmap } from "../../src/kernel/dirty-bitmap.js";
import type { KernelRegion } from "../../src/kernel/heap.js";
import { PAGE_SIZE, type Kernel } from "../../src/kernel/kernel.js";
import { hashPages } from "../../src/kernel/pagehash.js";
import { DEDUP_NONE, SAVE_MISS_INSERTED } from "../../src/kernel/abi.js";
import { DEFAULT_CODECS, type CodecOptions } from "../../src/codec/encode-pipeline.js";
import type { EncodeCounts } from "../../src/codec/codecs.js";
import { DedupIndex } from "../../src/codec/dedup-index.js";
import { FakeDirtyFilter } from "../../src/codec/fake-dirty.js";
import { XbzrleCache } from "../../src/codec/xbzrle-cache.js";
import { decodeRle } from "../../src/codec/rle.js";
import { decodeXbzrle } from "../../src/codec/xbzrle.js";
import type { GuestMemory } from "../../src/memory/guest-memory.js";
import { type PageRecordWriter, readPageRecords, RecordKind } from "../../src/wire/page-record.js";

const SKIP = -1;

export class OldEncodePipeline {
  readonly kernel: Kernel;
  readonly codecs: typeof DEFAULT_CODECS;
  readonly batchPages: number;
  readonly guestId = 0;
  readonly seed: bigint;
  readonly #zeroBits: DirtyBitmap;
  readonly #snapshot: KernelRegion;
  readonly #work: KernelRegion;
  readonly #rleFlags: KernelRegion;
  readonly #hashes: BigUint64Array;
  readonly #filter: FakeDirtyFilter | null;
  readonly #cache: XbzrleCache | null;
  readonly #dedup: DedupIndex | null;
  #round = 0;
  #lastStage = false;
  #sendAll = false;

  constructor(kernel: Kernel, pageCount: number, codecs: CodecOptions = {}, batchPages = 256) {
    this.kernel = kernel;
    const { hashSeed, dedupIndex: _d, guestId: _g, ...flags } = codecs;
    this.codecs = { ...DEFAULT_CODECS, ...flags };
    this.batchPages = batchPages;
    this.seed = hashSeed ?? 1n;
    this.#zeroBits = new DirtyBitmap(kernel, batchPages);
    this.#snapshot = kernel.alloc((batchPages + 1) * PAGE_SIZE, PAGE_SIZE);
    this.#work = kernel.alloc(batchPages * PAGE_SIZE, 64);
    this.#rleFlags = kernel.alloc(batchPages, 64);
    this.#hashes = new BigUint64Array(2 * batchPages);
    this.#filter = this.codecs.unchanged ? new FakeDirtyFilter(kernel, pageCount, { seed: this.seed }) : null;
    this.#cache = this.codecs.xbzrle ? new XbzrleCache(kernel, { bytes: this.codecs.xbzrleCacheBytes }) : null;
    this.#dedup = this.codecs.dedup ? new DedupIndex(kernel) : null;
    this.#dedup?.addGuest(0, pageCount);
  }

  snapshotView(count: number): Uint8Array {
    return new Uint8Array(this.kernel.memory.buffer, this.#snapshot.ptr + PAGE_SIZE, count * PAGE_SIZE);
  }

  beginRound(round: number, lastStage = false, sendAll = false): void {
    this.#round = round;
    this.#lastStage = lastStage;
    this.#sendAll = sendAll;
  }

  encode(pages: Uint32Array, count: number, out: PageRecordWriter, counts: EncodeCounts): void {
    const k = this.kernel;
    const c = this.codecs;
    const snap = this.#snapshot.ptr + PAGE_SIZE;
    const list = pages.subarray(0, count);
    const kind = new Int8Array(count).fill(RecordKind.RAW);
    const hashes = this.#hashes.subarray(0, 2 * count);
    const view = () => new Uint8Array(k.memory.buffer, snap, count * PAGE_SIZE);
    const pick = (positions: number[]) => {
      const h = new BigUint64Array(2 * positions.length);
      positions.forEach((i, j) => {
        h[2 * j] = hashes[2 * i];
        h[2 * j + 1] = hashes[2 * i + 1];
      });
      return h;
    };
    const overwrite = (page: number, data: Uint8Array | null) => {
      const cached = this.#cache?.lookup(page);
      if (cached) data ? cached.set(data) : cached.fill(0);
    };
    if (this.#filter || this.#dedup) hashPages(k, view(), count, hashes, { bits: 128, seed: this.seed });
    if (this.#filter && !this.#sendAll) {
      const skip = new Uint8Array(count);
      counts.skipped += this.#filter.filterHashed(list, hashes, skip);
      for (let i = 0; i < count; i++) if (skip[i]) kind[i] = SKIP;
    }
    if (c.zero) {
      this.#zeroBits.clearAll();
      k.raw.zeroPages(snap, count, this.#zeroBits.region.ptr);
      const words = this.#zeroBits.sharedWords();
      const zeros: number[] = [];
      for (let i = 0; i < count; i++) {
        if (kind[i] !== SKIP && (words[i >>> 5] >>> (i & 31)) & 1) {
          kind[i] = RecordKind.ZERO;
          out.add(RecordKind.ZERO, list[i]);
          zeros.push(i);
          overwrite(list[i], null);
        }
      }
      counts.zero += zeros.length;
      if (this.#dedup && zeros.length)
        this.#dedup.record(
          this.guestId,
          Uint32Array.from(zeros, (i) => list[i]),
          pick(zeros),
        );
    }
    const rest: number[] = [];
    for (let i = 0; i < count; i++) if (kind[i] === RecordKind.RAW) rest.push(i);
    let refs: Uint32Array | null = null;
    if (this.#dedup && !this.#sendAll) {
      refs = new Uint32Array(2 * rest.length);
      if (rest.length)
        this.#dedup.lookupAndRecord(
          this.guestId,
          Uint32Array.from(rest, (i) => list[i]),
          pick(rest),
          refs,
        );
      rest.forEach((i, j) => {
        if (refs![2 * j] !== DEDUP_NONE) kind[i] = RecordKind.DEDUP;
      });
    }
    const left: number[] = [];
    for (const i of rest) {
      if (kind[i] === RecordKind.DEDUP) overwrite(list[i], view().subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
      else left.push(i);
    }
    const m = left.length;
    const snapshot = view();
    left.forEach((i, j) => {
      if (i !== j) snapshot.copyWithin(j * PAGE_SIZE, i * PAGE_SIZE, (i + 1) * PAGE_SIZE);
    });
    // XBZRLE against the cache
    const xl = new Int32Array(m).fill(SAVE_MISS_INSERTED);
    const xb: Uint8Array[] = [];
    if (this.#cache && this.#round >= c.xbzrleFromRound && m > 0) {
      this.#cache.savePages(
        snapshot.subarray(0, m * PAGE_SIZE),
        Uint32Array.from(left, (i) => list[i]),
        this.#round,
        new Uint8Array(k.memory.buffer, this.#work.ptr, m * PAGE_SIZE),
        xl,
        { packed: true, lastStage: this.#lastStage },
      );
      const data = new Uint8Array(k.memory.buffer, this.#work.ptr, m * PAGE_SIZE);
      for (let j = 0, o = 0; j < m; j++)
        if (xl[j] > 0) {
          xb[j] = data.slice(o, o + xl[j]);
          o += xl[j];
        }
    }
    // RLE of the candidates
    const rl = new Int32Array(m).fill(-1);
    const rb: Uint8Array[] = [];
    if (c.rle && m > 0) {
      const minWords = Math.max(1, Math.ceil((PAGE_SIZE - c.rleMaxBytes) / 8 / 2));
      if (k.raw.rleCandidates(snap, m, minWords, this.#rleFlags.ptr) > 0) {
        const f = new Uint8Array(k.memory.buffer, this.#rleFlags.ptr, m);
        for (let j = 0; j < m; j++) {
          if (!f[j]) continue;
          rl[j] = k.raw.rleEncode(snap + j * PAGE_SIZE, this.#work.ptr, c.rleMaxBytes);
          if (rl[j] > 0) rb[j] = new Uint8Array(k.memory.buffer, this.#work.ptr, rl[j]).slice();
        }
      }
    }
    let j = 0;
    let r = 0;
    const packed = view();
    for (let i = 0; i < count; i++) {
      const page = list[i];
      if (kind[i] === SKIP || kind[i] === RecordKind.ZERO) continue;
      if (kind[i] === RecordKind.DEDUP) {
        out.addDedup(page, refs![2 * r], refs![2 * r + 1]);
        counts.dedup++;
        r++;
        continue;
      }
      r++;
      const body = packed.subarray(j * PAGE_SIZE, (j + 1) * PAGE_SIZE);
      if (xl[j] === 0 && !this.#sendAll) counts.skipped++;
      else if (xl[j] > 0 && (rl[j] < 0 || xl[j] <= rl[j])) {
        out.add(RecordKind.XBZRLE, page, xb[j]);
        counts.xbzrle++;
      } else if (rl[j] > 0 && rl[j] <= c.rleMaxBytes) {
        out.add(RecordKind.RLE, page, rb[j]);
        counts.rle++;
        if (xl[j] > 0) overwrite(page, body);
      } else {
        out.add(RecordKind.RAW, page, body);
        counts.raw++;
      }
      j++;
    }
  }

  dispose(): void {
    this.#zeroBits.dispose();
    this.kernel.free(this.#snapshot);
    this.kernel.free(this.#work);
    this.kernel.free(this.#rleFlags);
    this.#filter?.dispose();
    this.#cache?.dispose();
    this.#dedup?.dispose();
  }
}

/** The old applier: readPageRecords, then one kernel call (or a JS copy) per record; no digest. */
export function oldApplyRecords(k: Kernel, memory: GuestMemory, payload: Uint8Array): number {
  const zero = new Uint8Array(PAGE_SIZE);
  let n = 0;
  for (const r of readPageRecords(payload, memory.pageCount)) {
    const page = memory.pageView(r.page)!;
    switch (r.kind) {
      case RecordKind.ZERO:
        memory.writePage(r.page, zero);
        break;
      case RecordKind.RAW:
        memory.writePage(r.page, r.body);
        break;
      case RecordKind.XBZRLE:
        decodeXbzrle(k, r.body, page);
        break;
      case RecordKind.RLE:
        decodeRle(k, r.body, page);
        break;
      case RecordKind.DEDUP: {
        const v = new DataView(r.body.buffer, r.body.byteOffset, 8);
        memory.writePage(r.page, memory.pageView(v.getUint32(4, true))!);
        break;
      }
    }
    n++;
  }
  return n;
}
