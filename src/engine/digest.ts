// The whole-memory digest that commits a migration:
//
//   digest = XXH3-128(seed, h(0) ‖ h(1) ‖ … ‖ h(n-1)),   h(p) = XXH3-128(seed, page p)
//
// with the seed taken from the session (the source's handshake nonce). Per-page hashes
// let the post-copy destination hash each page as it arrives (before its guest writes
// it) and still compare with the source's digest of memory at the pause.
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
  readonly #batch: KernelRegion;

  constructor(kernel: Kernel, pageCount: number, seed: bigint) {
    this.kernel = kernel;
    this.pageCount = pageCount;
    this.seed = seed;
    this.#table = kernel.alloc(Math.max(1, pageCount) * HASH_BYTES, 64);
    this.#batch = kernel.alloc(BATCH * PAGE_SIZE, PAGE_SIZE);
  }

  /** Records the hash of one page's content (4096 bytes). */
  update(page: number, data: Uint8Array): void {
    const k = this.kernel;
    const batch = k.bytes(this.#batch);
    batch.set(data.subarray(0, PAGE_SIZE));
    hashPages(k, k.bytes(this.#batch), 1, this.#hashes(page, 1), { bits: 128, seed: this.seed });
  }

  /**
   * Hashes every page of `memory` (or those with `only(page)` true), reading them in
   * batches; guest RAM in this kernel's memory is hashed in place (no copy).
   */
  updateFrom(memory: GuestMemory, only?: (page: number) => boolean): void {
    const k = this.kernel;
    if (!only && memory instanceof WasmGuestMemory && memory.kernel === k && memory.pageCount === this.pageCount) {
      hashPages(k, memory.bytes(), this.pageCount, this.#hashes(0, this.pageCount), { bits: 128, seed: this.seed });
      return;
    }
    const list: number[] = [];
    const flush = () => {
      memory.readPages(list, k.bytes(this.#batch).subarray(0, list.length * PAGE_SIZE));
      const out = new BigUint64Array(2 * list.length);
      hashPages(k, k.bytes(this.#batch), list.length, out, { bits: 128, seed: this.seed });
      const table = this.#hashes(0, this.pageCount);
      list.forEach((p, i) => {
        table[2 * p] = out[2 * i];
        table[2 * p + 1] = out[2 * i + 1];
      });
      list.length = 0;
    };
    for (let p = 0; p < memory.pageCount; p++) {
      if (only && !only(p)) continue;
      list.push(p);
      if (list.length === BATCH) flush();
    }
    if (list.length) flush();
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
