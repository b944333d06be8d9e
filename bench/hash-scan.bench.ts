// The exact hash scan of a RAM file in /dev/shm (what migrate-qemu does at every round, and
// once while the guest is paused): on the calling thread (HashDirtyLog.harvest) against
// FileScanWorkers with 1, 2, … workers, for a 128 MiB and a 1 GiB file. Ceilings: memcpy of
// the same bytes in memory, and a plain read of the file (1 MiB reads, no hashing) on one
// thread and on as many threads as the pool has. Each measurement is verified first (1 % of
// the pages dirtied: every scan reports exactly those), warmed up, then timed as the median
// of several interleaved runs. The machine's 1-minute load average is recorded with each row.
//   Run: npm run build && npx tsx bench/hash-scan.bench.ts [--quick]
import { closeSync, existsSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { createKernel } from "../src/kernel/loader.js";
import { DirtyBitmap } from "../src/kernel/dirty-bitmap.js";
import { PAGE_SIZE } from "../src/kernel/abi.js";
import type { Kernel } from "../src/kernel/kernel.js";
import { FileMemory } from "../src/memory/file-memory.js";
import { FileScanWorkers } from "../src/memory/file-scan-workers.js";
import { HashDirtyLog } from "../src/memory/hash-dirty-log.js";
import { printTable, QUICK, rng, round, verify, writeResults } from "./harness.js";

const MiB = 2 ** 20;
const SIZES = QUICK ? [128 * MiB] : [128 * MiB, 1024 * MiB];
const RUNS = QUICK ? 5 : 11;
const cores = availableParallelism();
const WORKERS = [...new Set([1, 2, cores])].sort((a, b) => a - b);
const READ_WINDOW = MiB;

/** Median seconds of `runs` timed calls of each function, interleaved, after one warm-up call each. */
async function interleaved(fns: Record<string, () => unknown>, runs: number): Promise<Record<string, number>> {
  const names = Object.keys(fns);
  const samples: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (const n of names) await fns[n]();
  for (let r = 0; r < runs; r++) {
    for (const n of names) {
      const t0 = performance.now();
      await fns[n]();
      samples[n].push((performance.now() - t0) / 1e3);
    }
  }
  return Object.fromEntries(
    names.map((n) => {
      const s = samples[n].sort((a, b) => a - b);
      const mid = s.length >> 1;
      return [n, s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2];
    }),
  );
}

/** Guest-like content: a quarter zero pages, the rest random words. */
function makeFile(path: string, pages: number): void {
  const r = rng(1);
  const chunk = new Uint8Array(1024 * PAGE_SIZE);
  const dv = new DataView(chunk.buffer);
  const fd = openSync(path, "w");
  try {
    for (let first = 0; first < pages; first += 1024) {
      chunk.fill(0);
      for (let p = 0; p < 1024; p++) {
        if ((first + p) % 4 === 0) continue;
        for (let i = 0; i < PAGE_SIZE; i += 64) dv.setUint32(p * PAGE_SIZE + i, (r() * 2 ** 32) >>> 0);
      }
      writeSync(fd, chunk, 0, Math.min(1024, pages - first) * PAGE_SIZE);
    }
  } finally {
    closeSync(fd);
  }
}

/** Flips one byte in 1 % of the pages (the first and last page included); returns them, sorted. */
function dirty(path: string, pages: number, seed: number): number[] {
  const r = rng(seed);
  const want = new Set<number>([0, pages - 1]);
  while (want.size < pages / 100) want.add(Math.floor(r() * pages));
  const fd = openSync(path, "r+");
  const b = new Uint8Array(1);
  try {
    for (const p of want) {
      const at = p * PAGE_SIZE + Math.floor(r() * PAGE_SIZE);
      readSync(fd, b, 0, 1, at);
      b[0] ^= 0x81;
      writeSync(fd, b, 0, 1, at);
    }
  } finally {
    closeSync(fd);
  }
  return [...want].sort((x, y) => x - y);
}

/** Plain 1 MiB reads of the whole file on one thread: the single-thread ceiling. */
function readAll(path: string, bytes: number, buf: Uint8Array): void {
  const fd = openSync(path, "r");
  try {
    for (let at = 0; at < bytes; ) at += readSync(fd, buf, 0, Math.min(buf.length, bytes - at), at);
  } finally {
    closeSync(fd);
  }
}

/** Threads that read the file in plain 1 MiB reads, chunks of 4 MiB from a shared counter: the pool's ceiling. */
class ReadThreads {
  readonly #workers: Worker[];
  readonly #next = new Int32Array(new SharedArrayBuffer(4));
  constructor(path: string, bytes: number, count: number) {
    const code = `
      const { parentPort, workerData: { path, bytes, next } } = require("node:worker_threads");
      const { openSync, readSync } = require("node:fs");
      const fd = openSync(path, "r"), buf = new Uint8Array(${READ_WINDOW}), ctr = new Int32Array(next);
      parentPort.on("message", () => {
        for (;;) {
          const first = Atomics.add(ctr, 0, 4) * ${MiB};
          if (first >= bytes) break;
          const end = Math.min(first + 4 * ${MiB}, bytes);
          for (let at = first; at < end; ) at += readSync(fd, buf, 0, Math.min(buf.length, end - at), at);
        }
        parentPort.postMessage(0);
      });`;
    this.#workers = Array.from(
      { length: count },
      () => new Worker(code, { eval: true, workerData: { path, bytes, next: this.#next.buffer } }),
    );
  }
  async read(): Promise<void> {
    Atomics.store(this.#next, 0, 0);
    await Promise.all(
      this.#workers.map((w) => {
        const done = new Promise((r) => w.once("message", r));
        w.postMessage(0);
        return done;
      }),
    );
  }
  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }
}

async function suite(k: Kernel, bytes: number, rows: object[]): Promise<void> {
  const pages = bytes / PAGE_SIZE;
  const path = join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), `pw-hash-scan-bench-${process.pid}`);
  makeFile(path, pages);
  const file = FileMemory.open(path);
  const single = new HashDirtyLog(k, file, pages, { seed: 7n });
  const parallel = new HashDirtyLog(k, file, pages, { seed: 7n });
  const bm = new DirtyBitmap(k, pages);
  const pools = new Map<number, FileScanWorkers>();
  const readers = new Map<number, ReadThreads>();
  try {
    for (const n of WORKERS) {
      pools.set(n, await FileScanWorkers.start(k, path, pages, n));
      if (n > 1) readers.set(n, new ReadThreads(path, bytes, n));
    }
    // verify: after each round of writes both logs report exactly the pages written
    let seed = 2;
    for (const [n, pool] of pools) {
      const want = dirty(path, pages, seed++);
      verify("1 thread: the dirtied pages", [...single.harvest(bm).collect()], want);
      verify(`${n} workers: the dirtied pages`, [...(await parallel.harvestOn(pool, bm)).collect()], want);
    }
    const src = new Uint8Array(bytes).fill(0x5a);
    const dst = new Uint8Array(bytes);
    const buf = new Uint8Array(READ_WINDOW);
    const fns: Record<string, () => unknown> = {
      memcpy: () => dst.set(src),
      "read, 1 thread": () => readAll(path, bytes, buf),
      "scan, 1 thread (HashDirtyLog.harvest)": () => single.harvest(bm),
    };
    for (const [n, r] of readers) fns[`read, ${n} threads`] = () => r.read();
    for (const [n, pool] of pools)
      fns[`scan, ${n} worker${n > 1 ? "s" : ""} (FileScanWorkers)`] = () => parallel.harvestOn(pool, bm);
    const load = round(loadavg()[0], 1); // this machine is shared: threads only help with cores to spare
    const t = await interleaved(fns, RUNS);
    const base = t["scan, 1 thread (HashDirtyLog.harvest)"];
    for (const [what, s] of Object.entries(t)) {
      rows.push({
        file: `${bytes / MiB} MiB`,
        what,
        ms: round(s * 1e3, 1),
        "GB/s": round(bytes / s / 1e9, 2),
        "× 1-thread scan": round(base / s, 2),
        "load avg": load,
      });
    }
  } finally {
    for (const p of pools.values()) await p.close();
    for (const r of readers.values()) await r.close();
    bm.dispose();
    single.dispose();
    parallel.dispose();
    file.close();
    rmSync(path, { force: true });
  }
}

const k = await createKernel({ shared: true });
const rows: object[] = [];
for (const bytes of SIZES) await suite(k, bytes, rows);
printTable(rows as Record<string, unknown>[]);
console.log(`wrote ${writeResults("hash-scan", rows, [])}`);
