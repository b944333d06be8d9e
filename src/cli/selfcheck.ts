import { DirtyBitmap } from "../kernel/dirty-bitmap.js";
import { PAGE_SIZE, type Kernel } from "../kernel/kernel.js";

/** One named check of the loaded kernel against values computed here in plain JS. */
export interface SelfCheckResult {
  name: string;
  ok: boolean;
  detail: string;
}

/**
 * Quick end-to-end checks of the loaded kernel: each compares a kernel result with the
 * answer worked out in plain JS on the same seeded data.
 */
export function runSelfCheck(k: Kernel): SelfCheckResult[] {
  const results: SelfCheckResult[] = [];
  const check = (name: string, got: unknown, want: unknown) =>
    results.push({
      name,
      ok: JSON.stringify(got) === JSON.stringify(want),
      detail: `got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`,
    });

  const pages = 1000;
  const bm = new DirtyBitmap(k, pages);
  const want: number[] = [];
  let x = 12345;
  for (let i = 0; i < pages; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    if (x % 7 === 0) {
      bm.set(i);
      want.push(i);
    }
  }
  check("bitmap count", bm.count(), want.length);
  check("bitmap collect", Array.from(bm.collect()), want);
  check("bitmap nextSet", bm.nextSet(want[3] + 1), want[4]);
  const harvested = bm.harvest();
  check("bitmap harvest", [harvested.count(), bm.count()], [want.length, 0]);

  const mem = k.alloc(8 * PAGE_SIZE, 64);
  const other = k.alloc(9 * PAGE_SIZE, 64); // offset by one page: not a power-of-two distance
  const a = k.bytes(mem);
  a.fill(0);
  a[3 * PAGE_SIZE + 100] = 1;
  a[7 * PAGE_SIZE + 4095] = 9;
  const b = k.bytes(other).subarray(PAGE_SIZE);
  b.set(a);
  b[5 * PAGE_SIZE] = 2;
  const zero = new DirtyBitmap(k, 8);
  const diff = new DirtyBitmap(k, 8);
  k.zeroPages(k.bytes(mem), 8, zero);
  k.diffPages(k.bytes(mem), k.bytes(other).subarray(PAGE_SIZE), 8, diff);
  check("zeroPages", Array.from(zero.collect()), [0, 1, 2, 4, 5, 6]);
  check("diffPages", Array.from(diff.collect()), [5]);
  for (const r of [bm, harvested, zero, diff]) r.dispose();
  k.free(mem);
  k.free(other);
  return results;
}
