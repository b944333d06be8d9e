// A content-based dirty log must compare with what was sent, not with the previous scan:
// a page read for sending while it changed, then changed back before the next scan
// (A→B→A: a lock word, a stack slot), is dirty — the destination holds B.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DirtyBitmap, HashDirtyLog, loadKernel, PAGE_SIZE, type Kernel } from "../../src/index.js";
import { FileMemory } from "../../src/node.js";

let k: Kernel;
beforeAll(async () => {
  k = await loadKernel();
});

describe("HashDirtyLog.observe", () => {
  it("a page sent with transient content is dirty at the next scan although the scan saw no change", () => {
    for (const inKernel of [true, false]) {
      const P = 64;
      const mem = new Uint8Array(P * PAGE_SIZE);
      mem.fill(7);
      const log = new HashDirtyLog(k, mem, P, { seed: 5n });
      // page 9 is read (sent) while it holds a transient value
      const transient = mem.slice(9 * PAGE_SIZE, 10 * PAGE_SIZE);
      transient[100] = 1;
      const contents = inKernel ? k.bytes(k.alloc(PAGE_SIZE, 64)) : transient;
      if (inKernel) contents.set(transient);
      log.observe([9], contents);
      const bm = new DirtyBitmap(k, P);
      log.harvest(bm);
      expect(Array.from(bm.collect())).toEqual([9]); // memory is back to 7s: differs from what was sent
      log.harvest(bm);
      expect(bm.count()).toBe(0);
      // observing the current content: clean
      log.observe([3], mem.subarray(3 * PAGE_SIZE, 4 * PAGE_SIZE));
      log.harvest(bm);
      expect(bm.count()).toBe(0);
      expect(() => log.observe([P], mem.subarray(0, PAGE_SIZE))).toThrow(/outside/);
      bm.dispose();
      log.dispose();
    }
  });

  const dir = mkdtempSync(join(tmpdir(), "pw-observe-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("FileMemory's hash dirty log forwards observe once started", () => {
    const file = join(dir, "ram");
    writeFileSync(file, new Uint8Array(8 * PAGE_SIZE));
    const m = FileMemory.open(file);
    const log = m.hashDirtyLog(k);
    log.observe!([1], new Uint8Array(PAGE_SIZE)); // before start: ignored
    log.start();
    const bm = new DirtyBitmap(k, 8);
    log.observe!([2], new Uint8Array(PAGE_SIZE).fill(1));
    log.harvest(bm);
    expect(Array.from(bm.collect())).toEqual([2]);
    log.stop();
    bm.dispose();
    m.close();
  });
});
