// The whole-memory digest that commits a migration: a 128-bit hash per page, in page
// order, hashed once more. Per-page hashes let the post-copy destination hash each page
// as it arrives (before its guest writes it) and still compare with the source's digest
// of memory at the pause.
import { PAGE_SIZE, type Kernel } from "../kernel/kernel.js";
import type { GuestMemory } from "../memory/guest-memory.js";
import { crc32 } from "../transport/crc32.js";

const HASH_BYTES = 16;

/** Per-page 128-bit hashes of a memory and their combination. */
export class MemoryDigest {
  readonly pageCount: number;
  readonly #hashes: Uint8Array;
  readonly #seed: number;

  constructor(_kernel: Kernel, pageCount: number, seed: number) {
    this.pageCount = pageCount;
    this.#hashes = new Uint8Array(pageCount * HASH_BYTES);
    this.#seed = seed >>> 0;
  }

  /** Records the hash of one page's content. */
  update(page: number, data: Uint8Array): void {
    hashPageInto(data, this.#seed, this.#hashes.subarray(page * HASH_BYTES, (page + 1) * HASH_BYTES));
  }

  /** Hashes every page of `memory` (or the pages with `only(page)` true). */
  updateFrom(memory: GuestMemory, only?: (page: number) => boolean): void {
    const batch = 256;
    const buf = new Uint8Array(batch * PAGE_SIZE);
    const list: number[] = [];
    const flush = () => {
      memory.readPages(list, buf);
      list.forEach((p, i) => this.update(p, buf.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE)));
      list.length = 0;
    };
    for (let p = 0; p < memory.pageCount; p++) {
      if (only && !only(p)) continue;
      list.push(p);
      if (list.length === batch) flush();
    }
    if (list.length) flush();
  }

  /** The digest: hex of the hash of all page hashes. */
  digest(): string {
    const out = new Uint8Array(HASH_BYTES);
    hashPageInto(this.#hashes, this.#seed, out);
    return Array.from(out, (b) => b.toString(16).padStart(2, "0")).join("");
  }
}

/** 128-bit content hash of `data` into `out` (four seeded CRC-32 lanes). */
function hashPageInto(data: Uint8Array, seed: number, out: Uint8Array): void {
  const v = new DataView(out.buffer, out.byteOffset, HASH_BYTES);
  const c = crc32(data);
  v.setUint32(0, c ^ seed, true);
  v.setUint32(4, crc32(out.subarray(0, 4)) ^ data.length, true);
  v.setUint32(8, c, true);
  v.setUint32(12, seed, true);
}
