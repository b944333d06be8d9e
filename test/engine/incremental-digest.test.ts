// The destination keeps the whole-memory digest as pages arrive (codec/page-applier.ts
// hashes every page it writes): at COMPLETE it combines the table without reading memory
// while the guest is paused, in every mode; a destination guest writing in post-copy does
// not disturb it; a hash-scan log that adopts the session's seed at start() (HashDirtyLog.start)
// leaves it nothing to hash, one that keeps a seed of its own makes it hash memory once more.
import { describe, expect, it } from "vitest";
import type { MigrationMode } from "../../src/engine/source.js";
import { HashDirtyLog, PAGE_SIZE } from "../../src/index.js";
import { createMigrationPair, type MigrationPair } from "../support/migration-pair.js";
import { randInt, rng } from "../support/random.js";

/** Counts the destination memory's reads made by anyone but the page applier's kernel (which reads none). */
function countReads(pair: MigrationPair): { pages: number; wholeMemory: number } {
  const count = { pages: 0, wholeMemory: 0 };
  const dst = pair.dst;
  const readPages = dst.readPages.bind(dst);
  const bytes = dst.bytes.bind(dst);
  dst.readPages = (pages, out) => {
    count.pages += pages.length;
    readPages(pages, out);
  };
  dst.bytes = () => {
    count.wholeMemory++;

    return bytes();
  };
  return count;
}

function fill(pair: MigrationPair, seed: number): void {
  const r = rng(seed);
  const init = pair.src.bytes();
  for (let p = 0; p < pair.src.pageCount; p++) {
    if (p % 5 === 0) continue; // zero pages
    if (p % 7 === 0)
      init.copyWithin(p * PAGE_SIZE, 0, PAGE_SIZE); // duplicates
    else for (let j = 0; j < 64; j++) init[p * PAGE_SIZE + randInt(r, PAGE_SIZE)] = randInt(r, 256);
  }
}

describe("the destination's digest, kept as pages arrive", () => {
  for (const mode of ["precopy", "stop-and-copy", "postcopy", "hybrid"] as MigrationMode[]) {
    it(`${mode}: COMPLETE reads no destination memory, and the digests agree`, async () => {
      const pages = 1024;
      const writes: Promise<void>[] = [];
      const pair = await createMigrationPair({
        pages,
        mode,
        clock: "virtual",
        writer: { seed: 3 },
        source: { maxBandwidth: 200e6, downtimeLimitMs: 5, maxRounds: 5 },
        // post-copy: the destination guest writes the pages it faults in, as soon as it runs
        onActivate: (d) => {
          if (d.state !== "postcopy" || writes.length) return;
          for (let p = 0; p < pages; p += 31)
            writes.push(d.ensurePage(p).then(() => void (pair.dst.pageView(p)[7] ^= 0xff)));
        },
      });
      fill(pair, 11);
      const reads = countReads(pair);
      const { result } = await pair.run();
      await Promise.all(writes);
      expect(result.committed).toBe(true);
      expect(reads).toEqual({ pages: 0, wholeMemory: 0 });
      if (mode === "postcopy" || mode === "hybrid") expect(writes.length).toBeGreaterThan(0);
      else expect(Buffer.compare(pair.dst.bytes(), pair.atPause!)).toBe(0);
    });
  }

  /** A migration whose source finds dirty pages by exact hash scan (as FileMemory.hashDirtyLog), its table giving the source's digest. */
  async function hashScanMigration(adoptSeed: boolean) {
    const pages = 512;
    let scan: HashDirtyLog | null = null;
    const pair: MigrationPair = await createMigrationPair({
      pages,
      mode: "precopy",
      kernels: "one",
      dirtyLog: () => ({
        start: (session) => {
          scan = new HashDirtyLog(pair.kernels[0], pair.src.region, pages);
          if (adoptSeed) scan.start(session);
        },
        harvest: (into) => void scan!.harvest(into),
        observe: (list, contents) => scan!.observe(list, contents),
        pageHashes: () => scan!.pageHashes(),
        stop: () => {},
      }),
      source: { maxRounds: 3 },
    });
    fill(pair, 12);
    const reads = countReads(pair);
    const { result } = await pair.run();
    const seen = { ...reads }; // before the comparison below reads it
    scan!.dispose();
    expect(result.committed).toBe(true);
    expect(Buffer.compare(pair.dst.bytes(), pair.atPause!)).toBe(0);
    return seen;
  }

  it("a hash-scan log that adopts the session's seed: COMPLETE reads no destination memory", async () => {
    expect(await hashScanMigration(true)).toEqual({ pages: 0, wholeMemory: 0 });
  });

  it("a hash-scan log with a seed of its own: one more pass over destination memory, digests agree", async () => {
    const reads = await hashScanMigration(false);
    expect(reads.pages + reads.wholeMemory).toBeGreaterThan(0);
  });
});
