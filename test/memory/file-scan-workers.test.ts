// The hash scan of a RAM file on worker threads (memory/file-scan-workers.ts) against the
// single-threaded scan of the same file: the same pages, the same table, over rounds of
// random writes that include the first and last page and the first and last byte of
// pages; a file that shrinks under the workers fails the harvest; and FileMemory's log
// takes the session's digest seed, so a file-to-file migration's destination checks the
// digest at COMPLETE from the hashes it made as pages arrived, without reading memory again.
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { MigrationDestination } from "../../src/engine/destination.js";
import { MemoryDigest } from "../../src/engine/digest.js";
import { MigrationSource } from "../../src/engine/source.js";
import { DirtyBitmap } from "../../src/kernel/dirty-bitmap.js";
import type { Kernel } from "../../src/kernel/kernel.js";
import { createKernel } from "../../src/kernel/loader.js";
import { PAGE_SIZE } from "../../src/kernel/abi.js";
import { FileMemory } from "../../src/memory/file-memory.js";
import { FileScanWorkers, SCAN_CHUNK_PAGES } from "../../src/memory/file-scan-workers.js";
import type { DirtyLog } from "../../src/memory/guest-memory.js";
import { HashDirtyLog } from "../../src/memory/hash-dirty-log.js";
import { createInProcessPair } from "../../src/transport/in-process.js";
import { randInt, rng } from "../support/random.js";

// /dev/shm where there is one: the RAM files this is for live there
const base = process.platform === "linux" ? "/dev/shm" : tmpdir();
const dir = mkdtempSync(join(base, "pw-scan-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A file of `pages` random pages. */
function randomFile(name: string, pages: number, seed: number): string {
  const r = rng(seed);
  const bytes = new Uint8Array(pages * PAGE_SIZE);
  for (let i = 0; i < bytes.length; i += 4) new DataView(bytes.buffer).setUint32(i, randInt(r, 2 ** 32));
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

/**
 * Writes to the file: random bytes of random pages, plus the first page's byte 0, the last
 * page's last byte, and bytes at both sides of a chunk boundary. Returns the pages whose
 * content changed.
 */
function writeRound(file: FileMemory, path: string, r: () => number): number[] {
  const pages = file.pageCount;
  const edits = new Map<number, number>(); // byte offset → new value
  edits.set(0, 0);
  edits.set(pages * PAGE_SIZE - 1, 0);
  edits.set(SCAN_CHUNK_PAGES * PAGE_SIZE - 1, 0);
  edits.set(SCAN_CHUNK_PAGES * PAGE_SIZE, 0);
  for (let i = 0; i < 40; i++) {
    const page = randInt(r, pages);
    const at = [0, PAGE_SIZE - 1, randInt(r, PAGE_SIZE)][i % 3];
    edits.set(page * PAGE_SIZE + at, 0);
  }
  const changed = new Set<number>();
  const one = new Uint8Array(1);
  const out = FileMemory.open(path, { writable: true });
  try {
    for (const offset of edits.keys()) {
      const page = Math.floor(offset / PAGE_SIZE);
      const now = new Uint8Array(PAGE_SIZE);
      out.readRange(page, 1, now);
      one[0] = (now[offset % PAGE_SIZE] + 1 + randInt(r, 255)) & 0xff; // always a different byte
      now[offset % PAGE_SIZE] = one[0];
      out.writePage(page, now);
      changed.add(page);
    }
  } finally {
    out.close();
  }
  return [...changed].sort((a, b) => a - b);
}

describe("the hash scan of a RAM file on worker threads", () => {
  let k: Kernel;
  beforeAll(async () => {
    k = await createKernel({ shared: true });
  });

  it("finds exactly the pages a writer changed, as the single-threaded scan does, with the same table", async () => {
    // chunks of 4 MiB: 3 whole ones and a short last one, so that some worker takes two
    const pages = 3 * SCAN_CHUNK_PAGES + 37;
    const path = randomFile("ram-a", pages, 1);
    const file = FileMemory.open(path);
    const single = new HashDirtyLog(k, file, pages, { seed: 0x1234n });
    const parallel = new HashDirtyLog(k, file, pages, { seed: 0x1234n });
    const pool = await FileScanWorkers.start(k, path, pages, 3);
    const a = new DirtyBitmap(k, pages);
    const b = new DirtyBitmap(k, pages);
    try {
      expect(pool.count).toBe(3);
      const r = rng(7);
      for (let round = 0; round < 4; round++) {
        const changed = writeRound(file, path, r);
        single.harvest(a);
        await parallel.harvestOn(pool, b);
        expect([...b.collect()]).toEqual(changed);
        expect([...a.collect()]).toEqual(changed);
        expect(Buffer.compare(parallel.hashTable(), single.hashTable())).toBe(0);
      }
      // nothing written: nothing dirty
      await parallel.harvestOn(pool, b);
      expect(b.count()).toBe(0);
      expect(parallel.scans).toBe(5);
    } finally {
      await pool.close();
      for (const x of [a, b, single, parallel]) x.dispose();
      file.close();
    }
  });

  it("a file that shrinks under the workers fails the harvest (FILE_SHORT), and later ones", async () => {
    const pages = 2 * SCAN_CHUNK_PAGES;
    const path = randomFile("ram-shrinks", pages, 2);
    const file = FileMemory.open(path);
    const log = new HashDirtyLog(k, file, pages);
    const pool = await FileScanWorkers.start(k, path, pages, 2);
    try {
      truncateSync(path, (pages - 1) * PAGE_SIZE);
      await expect(log.harvestOn(pool)).rejects.toMatchObject({ code: "FILE_SHORT" });
      await expect(log.harvestOn(pool)).rejects.toMatchObject({ code: "FILE_SHORT" });
    } finally {
      await pool.close();
      log.dispose();
      file.close();
    }
  });

  it("FileMemory's log on a pool the caller owns: scans on it, and stop() leaves it running", async () => {
    const pages = 2 * SCAN_CHUNK_PAGES;
    const path = randomFile("ram-pool", pages, 6);
    const other = randomFile("ram-other", pages, 7);
    const file = FileMemory.open(path);
    const pool = await FileScanWorkers.start(k, path, pages, 2);
    const otherPool = await FileScanWorkers.start(k, other, pages, 2);
    const bm = new DirtyBitmap(k, pages);
    const r = rng(9);
    try {
      expect(() => file.hashDirtyLog(k, { scanPool: otherPool })).toThrow(
        expect.objectContaining({ code: "SCANNER_MISMATCH" }),
      );
      const scans = vi.spyOn(pool, "scanPages");
      for (let run = 0; run < 2; run++) {
        const log = file.hashDirtyLog(k, { scanPool: pool });
        log.start({ digestSeed: 0xabcn });
        const changed = writeRound(file, path, r);
        await log.harvest(bm);
        expect([...bm.collect()]).toEqual(changed);
        expect(log.pageHashes!()!.seed).toBe(0xabcn);
        log.stop();
      }
      expect(scans).toHaveBeenCalledTimes(2);
    } finally {
      await pool.close();
      await otherPool.close();
      bm.dispose();
      file.close();
    }
  });

  it("refuses a scanner of another page count, a bad worker count, an unshared kernel", async () => {
    const pages = SCAN_CHUNK_PAGES;
    const path = randomFile("ram-small", pages, 3);
    const file = FileMemory.open(path);
    const log = new HashDirtyLog(k, file, pages - 1);
    const pool = await FileScanWorkers.start(k, path, pages, 1);
    const unshared = await createKernel({ shared: false });
    try {
      await expect(log.harvestOn(pool)).rejects.toMatchObject({ code: "SCANNER_MISMATCH" });
      await expect(FileScanWorkers.start(k, path, pages, 0)).rejects.toMatchObject({ code: "SCAN_WORKERS" });
      await expect(FileScanWorkers.start(unshared, path, pages, 2)).rejects.toMatchObject({
        code: "SHARED_UNAVAILABLE",
      });
      expect(() => file.hashDirtyLog(unshared, { scanWorkers: 2 })).toThrow(
        expect.objectContaining({ code: "SHARED_UNAVAILABLE" }),
      );
      expect(() => file.hashDirtyLog(k, { scanWorkers: 1.5 })).toThrow(
        expect.objectContaining({ code: "SCAN_WORKERS" }),
      );
      await expect(file.hashDirtyLog(k).harvest(new DirtyBitmap(k, pages))).rejects.toMatchObject({
        code: "NOT_STARTED",
      });
    } finally {
      await pool.close();
      log.dispose();
      file.close();
    }
  });
});

describe("FileMemory's hash dirty log in a migration", () => {
  /**
   * Migrates file A into file B in this process with A's hash dirty log (`log`, wrapped so
   * that the "guest" writes A before each harvest) and returns how often the destination
   * hashed all of B again at COMPLETE, and the pages it read there.
   */
  async function migrateFiles(name: string, log: (a: FileMemory, k: Kernel) => DirtyLog) {
    const pages = 2 * SCAN_CHUNK_PAGES + 5;
    const pathA = randomFile(`${name}-a`, pages, 4);
    const pathB = join(dir, `${name}-b`);
    writeFileSync(pathB, new Uint8Array(pages * PAGE_SIZE));
    const a = FileMemory.open(pathA);
    const b = FileMemory.open(pathB, { writable: true });
    const k = await createKernel({ shared: true });
    const inner = log(a, k);
    const r = rng(5);
    let harvests = 0;
    const dirtyLog: DirtyLog = {
      ...inner,
      harvest: async (into) => {
        if (harvests++ < 2) writeRound(a, pathA, r); // the guest writes; the final harvest (paused) sees none
        await inner.harvest(into);
      },
    };
    // what the destination reads of B while it checks the digest, and full passes over it
    let verifying = false;
    let pagesRead = 0;
    const readPages = b.readPages.bind(b);
    b.readPages = (list, out) => {
      if (verifying) pagesRead += list.length;
      readPages(list, out);
    };
    const updateMissing = MemoryDigest.prototype.updateMissing;
    const missing = vi.spyOn(MemoryDigest.prototype, "updateMissing").mockImplementation(function (
      this: MemoryDigest,
      ...args
    ) {
      verifying = true;
      try {
        return updateMissing.apply(this, args);
      } finally {
        verifying = false;
      }
    });
    const fullPasses = vi.spyOn(MemoryDigest.prototype, "updateFrom");
    try {
      const [ta, tb] = createInProcessPair();
      const destination = new MigrationDestination({ memory: b, transport: tb, kernel: await createKernel() });
      const source = new MigrationSource({
        memory: a,
        transport: ta,
        kernel: k,
        mode: "precopy",
        dirtyLog,
        maxRounds: 4,
      });
      const [report] = await Promise.all([source.migrate(), destination.receive()]);
      expect(report.rounds.length).toBeGreaterThan(1);
      const at = new Uint8Array(pages * PAGE_SIZE);
      const bt = new Uint8Array(pages * PAGE_SIZE);
      a.readRange(0, pages, at);
      b.readRange(0, pages, bt);
      expect(Buffer.compare(at, bt)).toBe(0);
      expect(missing).toHaveBeenCalledTimes(1);
      return { fullPasses: fullPasses.mock.calls.length, pagesRead };
    } finally {
      missing.mockRestore();
      fullPasses.mockRestore();
      a.close();
      b.close();
    }
  }

  for (const scanWorkers of [1, 2]) {
    it(`scanWorkers ${scanWorkers}: the digest at COMPLETE needs no read of the destination's memory`, async () => {
      const seen = await migrateFiles(`seed-${scanWorkers}`, (a, k) => a.hashDirtyLog(k, { scanWorkers }));
      expect(seen).toEqual({ fullPasses: 0, pagesRead: 0 });
    });
  }

  it("a log keeping its own seed: the destination hashes all its memory once more", async () => {
    const seen = await migrateFiles("own-seed", (a, k) => {
      const log = a.hashDirtyLog(k, { scanWorkers: 2 });
      return { ...log, start: () => log.start() }; // the session's seed not passed on
    });
    expect(seen.fullPasses).toBe(1);
  });
});
