// The qemu-proxy source's dirty log: QEMU's own. Every RAM record of QEMU's stream lands in
// a shadow of the guest's RAM (what the destination QEMU will hold); a record whose content
// equals the shadow's page — QEMU resends pages whose content did not change — is dropped
// here, the others mark their page dirty. A harvest takes the marked pages and waits for
// QEMU when there are none: pagewire's rounds follow QEMU's stream. Too many marked pages
// pause QEMU's socket (backpressure: QEMU sees pagewire's real throughput, and what waits in
// the proxy when QEMU stops its guest stays small). Once QEMU stops its guest nothing is held
// back: its last pages are read whole, then go in one last round.
//
// The log keeps the XXH3-128 of every shadow page, hashed with the session's digest seed as
// pages are harvested, so the whole-memory digest at the pause costs no pass over memory.
import { decodeXbzrle } from "../codec/xbzrle.js";
import { PAGE_SIZE } from "../kernel/abi.js";
import { DirtyBitmap } from "../kernel/dirty-bitmap.js";
import type { KernelRegion } from "../kernel/heap.js";
import type { Kernel } from "../kernel/kernel.js";
import { hashBytes128, hashPageList, randomSeed } from "../kernel/pagehash.js";
import type { DirtyLog } from "../memory/guest-memory.js";
import type { WasmGuestMemory } from "../memory/wasm-guest-memory.js";
import type { RamRecordKind } from "./qemu-stream.js";

const HASH_BATCH = 1024;

export interface QemuStreamLogOptions {
  /**
   * Marked pages at which QEMU's socket is paused until the next harvest (default 96: what
   * waits here when QEMU stops its guest, and how long QEMU's last writes may be held back,
   * stays a small round; 512 gave ~1.5× the downtime at 10 MiB/s).
   */
  highWaterPages?: number;
  /** A harvest waits for this many marked pages (default: half the high-water mark) … */
  batchPages?: number;
  /** … or this long after the first one, ms (default 5), or the end of QEMU's stream. */
  batchWaitMs?: number;
  pause(): void;
  resume(): void;
}

/** What QEMU's stream carried, as the proxy saw it. */
export interface QemuStreamCounts {
  records: number;
  zeroRecords: number;
  pageRecords: number;
  xbzrleRecords: number;
  /** Records whose content the destination already had (not sent again). */
  unchanged: number;
}

export class QemuStreamLog implements DirtyLog {
  readonly kernel: Kernel;
  readonly memory: WasmGuestMemory;
  readonly counts: QemuStreamCounts = { records: 0, zeroRecords: 0, pageRecords: 0, xbzrleRecords: 0, unchanged: 0 };
  readonly #o: QemuStreamLogOptions;
  readonly #highWater: number;
  readonly #marked: DirtyBitmap;
  /** Pages the shadow was ever written at (the others hold the zeros it began with, untouched). */
  readonly #written: DirtyBitmap;
  #pending = 0;
  #paused = false;
  #completing = false;
  /** QEMU's guest is stopped for good (its completion began): QEMU is never held back again. */
  #released = false;
  #ended = false;
  /** Rounds have begun: before, QEMU is never held back (its stream fills the shadow while the session is set up). */
  #started = false;
  #error: unknown = null;
  #wake: (() => void) | null = null;
  #seed = randomSeed();
  #table: KernelRegion;
  readonly #scratch = new Uint8Array(PAGE_SIZE);

  constructor(kernel: Kernel, memory: WasmGuestMemory, options: QemuStreamLogOptions) {
    this.kernel = kernel;
    this.memory = memory;
    this.#o = options;
    this.#highWater = options.highWaterPages ?? 96;
    this.#marked = new DirtyBitmap(kernel, memory.pageCount);
    this.#written = new DirtyBitmap(kernel, memory.pageCount);
    this.#table = kernel.alloc(memory.pageCount * 16, 64);
  }

  /** True once QEMU's completion record began (its guest is stopped). */
  get completing(): boolean {
    return this.#completing;
  }

  /** True once QEMU's whole stream is in (its tail ended): the last harvest is next. */
  get ended(): boolean {
    return this.#ended;
  }

  /** QEMU's stream is complete: the waiting harvest returns what is left. */
  end(): void {
    this.#ended = true;
    this.#signal();
  }

  /** Marked pages not harvested yet. */
  get pending(): number {
    return this.#pending;
  }

  /** Applies one record of QEMU's stream to the shadow; marks the page if its content changed. */
  record(page: number, kind: RamRecordKind, data: Uint8Array | number): void {
    const c = this.counts;
    c.records++;
    const view = this.memory.pageView(page);
    // a page never written still holds the shadow's initial zeros: compared without reading
    // it (the first read of an untouched page costs a page fault, ~12 µs here)
    const fresh = !this.#written.get(page);
    let changed: boolean;
    if (kind === "zero") {
      c.zeroRecords++;
      const fill = data as number;
      changed = fresh ? fill !== 0 : !allBytes(view, fill);
      if (changed) view.fill(fill);
    } else if (kind === "page") {
      c.pageRecords++;
      changed = !samePage(fresh ? ZERO_PAGE : view, data as Uint8Array);
      if (changed) view.set(data as Uint8Array);
    } else {
      c.xbzrleRecords++;
      // QEMU encoded against what its destination holds: the shadow page
      const s = this.#scratch;
      if (fresh) s.fill(0);
      else s.set(view);
      decodeXbzrle(this.kernel, data as Uint8Array, s);
      changed = !samePage(fresh ? ZERO_PAGE : view, s);
      if (changed) view.set(s);
    }
    if (!changed) {
      c.unchanged++;
      return;
    }
    this.#written.set(page);
    if (!this.#marked.get(page)) {
      this.#marked.set(page);
      this.#pending++;
      if (this.#started && this.#pending >= this.#highWater && !this.#paused && !this.#released) {
        this.#paused = true;
        this.#o.pause();
      }
    }
    this.#signal();
  }

  /** QEMU's completion record began: the socket is never paused again; the next harvest waits for the stream's end. */
  completion(): void {
    this.#completing = true;
    // the rest of the stream is read whole before the final round (the pages land in the shadow)
    this.release();
  }

  /**
   * QEMU stopped its guest to complete (known from QMP before its completion record, which
   * may sit behind a paused socket): QEMU's socket is resumed and never paused again, so its
   * last writes are not held back by pagewire's pace.
   */
  release(): void {
    this.#released = true;
    if (this.#paused) {
      this.#paused = false;
      this.#o.resume();
    }
    this.#signal();
  }

  /** QEMU's guest runs again (its user had paused it, not QEMU's completion): held back as before. */
  holdAgain(): void {
    if (!this.#completing) this.#released = false;
  }

  /** The stream failed: the waiting harvest (and every later one) throws `err`. */
  fail(err: unknown): void {
    this.#error ??= err;
    this.#signal();
  }

  start(session?: { digestSeed: bigint }): void {
    this.#started = true;
    this.#seed = session?.digestSeed ?? this.#seed;
    // nothing was harvested yet: every page a record changed is marked (hashed at its
    // harvest), every other page still holds the zeros the shadow began with
    this.#hashZero();
  }

  async harvest(into: DirtyBitmap): Promise<void> {
    // pages come at QEMU's pace; once QEMU stopped its guest, the rest of its stream is read
    // first (rounds now would only slow QEMU's last writes) and one last harvest takes it all
    while ((this.#pending === 0 || this.#completing) && !this.#ended && !this.#error)
      await new Promise<void>((r) => (this.#wake = r));
    // a round per record would cost more than its pages: gather a batch, briefly
    const deadline = performance.now() + (this.#o.batchWaitMs ?? 5);
    while (
      this.#pending < (this.#o.batchPages ?? this.#highWater >>> 1) &&
      !this.#ended &&
      !this.#error &&
      !this.#paused
    ) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      await new Promise<void>((r) => {
        this.#wake = r;
        setTimeout(r, left);
      });
    }
    if (this.#error) throw this.#error;
    into.copyFrom(this.#marked);
    this.#hash(this.#marked.collect());
    this.#marked.clearAll();
    this.#pending = 0;
    if (this.#paused) {
      this.#paused = false;
      this.#o.resume();
    }
  }

  stop(): void {}

  pageHashes(): { seed: bigint; table: Uint8Array } {
    return { seed: this.#seed, table: this.kernel.bytes(this.#table) };
  }

  dispose(): void {
    this.#marked.dispose();
    this.#written.dispose();
    this.kernel.free(this.#table);
  }

  #signal(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  /** Every table entry := the zero page's hash. */
  #hashZero(): void {
    const k = this.kernel;
    const z = hashBytes128(k, new Uint8Array(PAGE_SIZE), this.#seed);
    const t = new BigUint64Array(k.memory.buffer, this.#table.ptr, 2 * this.memory.pageCount);
    for (let p = 0; p < this.memory.pageCount; p++) {
      t[2 * p] = z.low;
      t[2 * p + 1] = z.high;
    }
  }

  /** Hashes the listed shadow pages into the table. */
  #hash(pages: Uint32Array): void {
    const k = this.kernel;
    const out = new BigUint64Array(2 * HASH_BATCH);
    for (let i = 0; i < pages.length; i += HASH_BATCH) {
      const list = pages.subarray(i, i + HASH_BATCH);
      hashPageList(k, this.memory.bytes(), list, out, { bits: 128, seed: this.#seed });
      const t = new BigUint64Array(k.memory.buffer, this.#table.ptr, 2 * this.memory.pageCount);
      for (let j = 0; j < list.length; j++) {
        t[2 * list[j]] = out[2 * j];
        t[2 * list[j] + 1] = out[2 * j + 1];
      }
    }
  }
}

const ZERO_PAGE = new Uint8Array(PAGE_SIZE);

/** True when the two pages (views of PAGE_SIZE bytes) hold the same bytes. */
function samePage(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

function allBytes(view: Uint8Array, fill: number): boolean {
  if (fill === 0) return samePage(view, ZERO_PAGE);
  for (let i = 0; i < view.length; i++) if (view[i] !== fill) return false;
  return true;
}
