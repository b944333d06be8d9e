// The whole-memory digest that commits a migration:
//
//   digest = XXH3-128(seed, h(0) ‖ h(1) ‖ … ‖ h(n-1)),   h(p) = XXH3-128(seed, page p)
//
// with the seed taken from the session (the source's handshake nonce). Per-page hashes
// let the destination keep the digest as pages arrive: the page applier hashes every page
// it writes into the table (codec/page-applier.ts; its kernel for guest RAM in kernel
// memory) and marks it hashed, so COMPLETE combines the table and reads memory only for
// pages no record ever wrote (none, in a migration that sent every page). Post-copy: the
// present pages' hashes are final at the switch and arrivals are hashed as they are
// written, before the destination's guest can write them.
import { DirtyBitmap } from "../kernel/dirty-bitmap.js";
import type { KernelRegion } from "../kernel/heap.js";
import { PAGE_SIZE, type Kernel } from "../kernel/kernel.js";
import type { GuestMemory } from "../memory/guest-memory.js";
import { WasmGuestMemory } from "../memory/wasm-guest-memory.js";
import { hashBytes128, hashPages } from "../kernel/pagehash.js";

const HASH_BYTES = 16;
const BATCH = 256;

/** Per-page XXH3-128 hashes of a memory (in kernel memory, 16 bytes per page) and their combination. */
export class MemoryDigest {
  readonly kernel: Kernel;
  readonly pageCount: number;
  readonly seed: bigint;
  readonly #table: KernelRegion;
  /** Pages whose table entry is the hash of what they hold. */
  readonly #hashed: DirtyBitmap;
  readonly #batch: KernelRegion;

  constructor(kernel: Kernel, pageCount: number, seed: bigint) {
    this.kernel = kernel;
    this.pageCount = pageCount;
    this.seed = seed;
    this.#table = kernel.alloc(Math.max(1, pageCount) * HASH_BYTES, 64);
    this.#hashed = new DirtyBitmap(kernel, pageCount);
    this.#batch = kernel.alloc(BATCH * PAGE_SIZE, PAGE_SIZE);
  }

  /** Kernel address of the hash table (16 bytes per page: low, high), for a kernel that hashes pages into it. */
  get tableAddress(): number {
    return this.#table.ptr;
  }

  /** Kernel address of the bitmap of pages hashed (a kernel writing the table sets their bits). */
  get hashedAddress(): number {
    return this.#hashed.region.ptr;
  }

  /** Pages whose hash is in the table. */
  get hashedPages(): number {
    return this.#hashed.count();
  }

  /**
   * Every page holds zeros (fresh memory nothing wrote yet): each table entry becomes the
   * zero page's hash and counts as hashed, without reading memory.
   */
  assumeZero(): void {
    const k = this.kernel;
    const zero = k.alloc(PAGE_SIZE, PAGE_SIZE, true);
    try {
      const out = new BigUint64Array(2);
      hashPages(k, k.bytes(zero), 1, out, { bits: 128, seed: this.seed });
      const t = this.#hashes(0, this.pageCount);
      for (let p = 0; p < this.pageCount; p++) {
        t[2 * p] = out[0];
        t[2 * p + 1] = out[1];
      }
      this.#hashed.setRange(0, this.pageCount);
    } finally {
      k.free(zero);
    }
  }

  /** Records the hash of one page's content (4096 bytes). */
  update(page: number, data: Uint8Array): void {
    const k = this.kernel;
    const batch = k.bytes(this.#batch);
    batch.set(data.subarray(0, PAGE_SIZE));
    hashPages(k, k.bytes(this.#batch), 1, this.#hashes(page, 1), { bits: 128, seed: this.seed });
    this.#hashed.set(page);
  }

  /**
   * Hashes every page of `memory` (or those with `only(page)` true), reading them in
   * batches; guest RAM in this kernel's memory is hashed in place (no copy).
   */
  updateFrom(memory: GuestMemory, only?: (page: number) => boolean): void {
    const k = this.kernel;
    if (!only && memory instanceof WasmGuestMemory && memory.kernel === k && memory.pageCount === this.pageCount) {
      hashPages(k, memory.bytes(), this.pageCount, this.#hashes(0, this.pageCount), { bits: 128, seed: this.seed });
      this.#hashed.setRange(0, this.pageCount);
      return;
    }
    const pages: number[] = [];
    for (let p = 0; p < memory.pageCount; p++) if (!only || only(p)) pages.push(p);
    this.#hashPages(memory, pages);
  }

  /**
   * Hashes the pages of `memory` (those with `only(page)` true) whose hash is not in the
   * table yet: what no applied record wrote. Cost: a bitmap scan, plus a read of each such page.
   */
  updateMissing(memory: GuestMemory, only?: (page: number) => boolean): void {
    if (this.#hashed.count() === 0) {
      this.updateFrom(memory, only); // nothing hashed yet (a digest with another seed): one pass, in place when it can
      return;
    }
    const missing = new DirtyBitmap(this.kernel, this.pageCount);
    try {
      missing.setRange(0, this.pageCount);
      missing.andNot(this.#hashed);
      const pages = [...missing.collect()].filter((p) => !only || only(p));
      this.#hashPages(memory, pages);
    } finally {
      missing.dispose();
    }
  }

  /** Hashes the listed pages of `memory`, reading them in batches. */
  #hashPages(memory: GuestMemory, pages: number[]): void {
    const k = this.kernel;
    const out = new BigUint64Array(2 * BATCH);
    for (let i = 0; i < pages.length; i += BATCH) {
      const list = pages.slice(i, i + BATCH);
      memory.readPages(list, k.bytes(this.#batch).subarray(0, list.length * PAGE_SIZE));
      hashPages(k, k.bytes(this.#batch), list.length, out, { bits: 128, seed: this.seed });
      const table = this.#hashes(0, this.pageCount);
      list.forEach((p, j) => {
        table[2 * p] = out[2 * j];
        table[2 * p + 1] = out[2 * j + 1];
        this.#hashed.set(p);
      });
    }
  }

  /** The digest as 32 hex digits. */
  digest(): string {
    return digestOfPageHashes(
      this.kernel,
      this.kernel.bytes(this.#table).subarray(0, this.pageCount * HASH_BYTES),
      this.seed,
    );
  }

  dispose(): void {
    this.kernel.free(this.#table);
    this.#hashed.dispose();
    this.kernel.free(this.#batch);
  }

  #hashes(page: number, count: number): BigUint64Array {
    return new BigUint64Array(this.kernel.memory.buffer, this.#table.ptr + page * HASH_BYTES, 2 * count);
  }
}

/**
 * The digest from a table of per-page XXH3-128 hashes (low, high u64 per page, `seed`):
 * what a hash-scan dirty log already holds after scanning the paused guest, so the source
 * need not read memory once more.
 */
export function digestOfPageHashes(k: Kernel, table: Uint8Array, seed: bigint): string {
  const h = hashBytes128(k, table, seed);
  return h.high.toString(16).padStart(16, "0") + h.low.toString(16).padStart(16, "0");
}

/** The digest seed for a session: the first 8 bytes of the source's nonce. */
export function digestSeed(sourceNonceHex: string): bigint {
  return BigInt("0x" + sourceNonceHex.slice(0, 16));
}
