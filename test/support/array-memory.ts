// Guest memory outside kernel memory, as a file is (pageView is null), over a plain array;
// counts page writes.
import { PAGE_SIZE } from "../../src/kernel/abi.js";
import type { GuestMemory } from "../../src/memory/guest-memory.js";

export class ArrayMemory implements GuestMemory {
  readonly bytes: Uint8Array;
  writes = 0;
  constructor(readonly pageCount: number) {
    this.bytes = new Uint8Array(pageCount * PAGE_SIZE);
  }
  readPages(pages: ArrayLike<number>, out: Uint8Array): void {
    for (let i = 0; i < pages.length; i++)
      out.set(this.bytes.subarray(pages[i] * PAGE_SIZE, (pages[i] + 1) * PAGE_SIZE), i * PAGE_SIZE);
  }
  writePage(page: number, data: Uint8Array): void {
    this.writes++;
    this.bytes.set(data.subarray(0, PAGE_SIZE), page * PAGE_SIZE);
  }
  pageView(): Uint8Array | null {
    return null;
  }
  async flush(): Promise<void> {}
}
