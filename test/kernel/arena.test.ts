// Kernel instances on arenas of one shared kernel memory (kernel.arena, createKernel({ arena })):
// the arena heap, what instantiating another instance on a memory writes (nothing new), and
// Workers hashing concurrently, each with its own instance, over guest RAM that lives in
// the owner's memory outside their arenas. The Workers are plain JavaScript importing dist/
// (`npm run build` first).
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { createXXHash128, createXXHash3 } from "hash-wasm";
import { beforeAll, describe, expect, it } from "vitest";
import { createKernel, type Kernel, PAGE_SIZE } from "../../src/index.js";
import { HASH_SCRATCH_BYTES } from "../../src/kernel/abi.js";
import type { KernelArena } from "../../src/kernel/loader.js";
import { hashPageList } from "../../src/kernel/pagehash.js";
import { HashDirtyLog } from "../../src/memory/hash-dirty-log.js";
import { createMigrationPair } from "../support/migration-pair.js";
import { randInt, rng } from "../support/random.js";

const LOADER_JS = pathToFileURL(fileURLToPath(new URL("../../dist/kernel/loader.js", import.meta.url))).href;
const PAGEHASH_JS = pathToFileURL(fileURLToPath(new URL("../../dist/kernel/pagehash.js", import.meta.url))).href;

const RAM_PAGES = 1024;
const SEEDS = [0n, 1n, 0xdeadbeefn, 0x9e3779b97f4a7c15n, 0xffffffffffffffffn];

/** Guest-like pages: zero pages, sparse words, repeated patterns, random. */
function fillRam(k: Kernel, ram: { ptr: number; bytes: number }, seed: number): void {
  const r = rng(seed);
  const w = k.u32(ram);
  for (let p = 0; p < ram.bytes / PAGE_SIZE; p++) {
    const o = p * 1024;
    const kind = r();
    if (kind < 0.2) w.fill(0, o, o + 1024);
    else if (kind < 0.5) {
      w.fill(0, o, o + 1024);
      for (let j = 0; j < 32; j++) w[o + randInt(r, 1024)] = randInt(r, 2 ** 32);
    } else if (kind < 0.7) w.fill(randInt(r, 2 ** 32), o, o + 1024);
    else for (let j = 0; j < 1024; j++) w[o + j] = randInt(r, 2 ** 32);
  }
}

interface HashJob {
  kind: "pages" | "list" | "bytes";
  bits: 64 | 128;
  seed: bigint;
  /** pages/list: the single-threaded hash of every RAM page; bytes: [low, high?] of the slice. */
  expected: BigUint64Array;
  /** bytes: the slice of RAM hashed. */
  offset?: number;
  length?: number;
}

/** Single-threaded results, by the owner kernel, for each kind of call the workers make. */
function expectedJobs(owner: Kernel, ram: { ptr: number; bytes: number }): HashJob[] {
  const jobs: HashJob[] = [];
  const view = owner.bytes(ram);
  for (const seed of SEEDS) {
    for (const bits of [64, 128] as const) {
      const all = new BigUint64Array((RAM_PAGES * bits) / 64);
      owner.hashPages(view, RAM_PAGES, all, { bits, seed });
      jobs.push({ kind: "pages", bits, seed, expected: all }, { kind: "list", bits, seed, expected: all });
    }
  }
  const r = rng(99);
  for (let i = 0; i < 12; i++) {
    const seed = SEEDS[i % SEEDS.length];
    const length = i < 2 ? randInt(r, 241) : 241 + randInt(r, 3 * PAGE_SIZE); // short, mid and long inputs
    const offset = randInt(r, ram.bytes - length);
    const data = view.subarray(offset, offset + length);
    const bits = i & 1 ? 128 : 64;
    const expected =
      bits === 64
        ? BigUint64Array.of(owner.hashPage(data, seed))
        : (({ low, high }) => BigUint64Array.of(low, high))(owner.hashPage128(data, seed));
    jobs.push({ kind: "bytes", bits, seed, expected, offset, length });
  }
  return jobs;
}

// The worker: attaches its own kernel on its arena, waits at the barrier, then calls the jobs
// in a random order on random page ranges and counts results that differ from `expected`.
// control: [0] workers ready, [1] go, [2] workers done, [3] stop (a worker saw a mismatch and stopOnMismatch).
const WORKER_JS = `
const { workerData, parentPort } = require("node:worker_threads");
const { arena, loaderJs, pagehashJs, ram, jobs, rounds, maxMs, stopOnMismatch, scratch, control, seed } = workerData;
Promise.all([import(loaderJs), import(pagehashJs)]).then(async ([{ createKernel }, { hashPageList }]) => {
  const k = await createKernel({ arena });
  const ownScratch = k.raw.getScratch();
  if (scratch !== undefined) k.raw.setScratch(scratch); // the kernel before setScratch: one static scratch for all
  const pageCount = ram.bytes / 4096;
  const out = k.alloc(pageCount * 16, 64);
  const idx = k.alloc(64 * 4, 64);
  let x = seed >>> 0 || 1;
  const rnd = (n) => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return (x >>> 0) % n; };
  Atomics.add(control, 0, 1);
  Atomics.notify(control, 0);
  while (Atomics.load(control, 1) === 0) Atomics.wait(control, 1, 0);
  const deadline = Date.now() + maxMs;
  let mismatches = 0, calls = 0, pages = 0, copies = 0, firstMismatch;
  const check = (got, want, what) => {
    for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) { mismatches++; firstMismatch ??= what; return; }
  };
  for (let r = 0; r < rounds && Date.now() < deadline && Atomics.load(control, 3) === 0; r++) {
    const job = jobs[rnd(jobs.length)];
    const w = job.bits / 64;
    const buf = k.memory.buffer; // views are made per call: the owner may grow the memory meanwhile
    if (job.kind === "pages") {
      const count = 1 + rnd(64), first = rnd(pageCount - count + 1);
      const view = new Uint8Array(buf, ram.ptr + first * 4096, count * 4096);
      // a view made just before the owner grew the memory is of an older buffer object: the
      // kernel copies it (correct, not in place); only a view of the current buffer must be used in place
      if (!k.owns(view) && buf === k.memory.buffer) copies++;
      const got = new BigUint64Array(buf, out.ptr, count * w);
      k.hashPages(view, count, got, { bits: job.bits, seed: job.seed });
      check(got, job.expected.subarray(first * w, (first + count) * w), "hashPages " + job.bits + " seed " + job.seed);
      pages += count;
    } else if (job.kind === "list") {
      const count = 1 + rnd(64);
      const indices = new Uint32Array(buf, idx.ptr, count);
      for (let i = 0; i < count; i++) indices[i] = rnd(pageCount);
      const got = new BigUint64Array(buf, out.ptr, count * w);
      hashPageList(k, new Uint8Array(buf, ram.ptr, ram.bytes), indices, got, { bits: job.bits, seed: job.seed });
      const want = new BigUint64Array(count * w);
      for (let i = 0; i < count; i++) for (let j = 0; j < w; j++) want[i * w + j] = job.expected[indices[i] * w + j];
      check(got, want, "hashPageList " + job.bits + " seed " + job.seed);
      pages += count;
    } else {
      const data = new Uint8Array(buf, ram.ptr + job.offset, job.length);
      const got = job.bits === 64 ? [k.hashPage(data, job.seed)] : Object.values(k.hashPage128(data, job.seed));
      check(got, job.expected, "hash" + job.bits + " of " + job.length + " bytes seed " + job.seed);
    }
    calls++;
    if (stopOnMismatch && mismatches > 0) Atomics.store(control, 3, 1);
  }
  Atomics.add(control, 2, 1);
  parentPort.postMessage({
    mismatches, firstMismatch, calls, pages, copies, ownScratch,
    memoryBytes: k.memory.buffer.byteLength, allocated: k.allocatedBytes,
  });
}).catch((e) => {
  Atomics.add(control, 2, 1);
  parentPort.postMessage({ error: String(e && e.stack || e) });
});
`;

interface WorkerResult {
  error?: string;
  mismatches: number;
  firstMismatch?: string;
  calls: number;
  pages: number;
  copies: number;
  ownScratch: number;
  memoryBytes: number;
  allocated: number;
}

interface RunOptions {
  workers: number;
  rounds: number;
  maxMs: number;
  stopOnMismatch?: boolean;
  /** Every worker's instance uses this scratch instead of its own (the kernel before setScratch). */
  scratch?: number;
  /** Give each worker only the jobs with these seeds (by worker), so that seeds differ between workers. */
  seedsByWorker?: bigint[][];
  /** While the workers run, the main thread grows the memory and hashes with the owner kernel. */
  alongside?: (control: Int32Array) => void;
}

/** Starts `workers` Workers, each attached to its own arena of `owner`, releases them together, returns their reports. */
async function runWorkers(
  owner: Kernel,
  ram: { ptr: number; bytes: number },
  jobs: HashJob[],
  opts: RunOptions,
): Promise<{ results: WorkerResult[]; arenas: KernelArena[] }> {
  const control = new Int32Array(new SharedArrayBuffer(16));
  const arenas = Array.from({ length: opts.workers }, () => owner.arena(256 * 1024));
  const workers = arenas.map(
    (arena, i) =>
      new Worker(WORKER_JS, {
        eval: true,
        workerData: {
          arena,
          loaderJs: LOADER_JS,
          pagehashJs: PAGEHASH_JS,
          ram,
          jobs: opts.seedsByWorker ? jobs.filter((j) => opts.seedsByWorker?.[i].includes(j.seed)) : jobs,
          rounds: opts.rounds,
          maxMs: opts.maxMs,
          stopOnMismatch: opts.stopOnMismatch ?? false,
          scratch: opts.scratch,
          control,
          seed: 1 + i * 7919,
        },
      }),
  );
  try {
    const reports = workers.map(
      (w) =>
        new Promise<WorkerResult>((resolve, reject) => {
          w.once("message", resolve);
          w.once("error", reject);
          w.once("exit", (code) => reject(new Error(`worker exited (${code}) before reporting`)));
        }),
    );
    // a failed start (stale dist/, a load error) reports instead of reaching the barrier
    const failed = Promise.race(reports.map((p) => p.then((r) => (r.error ? r : new Promise<never>(() => {})))));
    const ready = (async () => {
      while (Atomics.load(control, 0) < opts.workers) await new Promise((r) => setTimeout(r, 5));
    })();
    const first = await Promise.race([ready, failed]);
    if (first) throw new Error(`worker failed: ${first.error} (run \`npm run build\` first?)`);
    Atomics.store(control, 1, 1);
    Atomics.notify(control, 1);
    opts.alongside?.(control);
    const results = await Promise.all(reports);
    for (const r of results) if (r.error) throw new Error(`worker failed: ${r.error}`);
    return { results, arenas };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

describe("kernel arenas", () => {
  let owner: Kernel;
  beforeAll(async () => {
    owner = await createKernel({ shared: true });
  });

  it("an attached kernel allocates only inside its arena, takes its scratch there and never grows memory", async () => {
    const arena = owner.arena(64 * 1024);
    expect(arena).toMatchObject({ memory: owner.memory, bytes: 64 * 1024, build: owner.build });
    expect(arena.ptr % 64).toBe(0);
    expect(owner.bytes(arena).every((b) => b === 0)).toBe(true);
    const k = await createKernel({ arena });
    expect(k.memory).toBe(owner.memory);
    expect(k.shared).toBe(true);
    expect(k.build).toBe(owner.build);
    expect(k.arenaRegion).toEqual({ ptr: arena.ptr, bytes: arena.bytes });
    expect(owner.arenaRegion).toBeUndefined();
    const scratch = k.raw.getScratch();
    expect(scratch).toBeGreaterThanOrEqual(arena.ptr);
    expect(scratch + HASH_SCRATCH_BYTES).toBeLessThanOrEqual(arena.ptr + arena.bytes);
    // the owner keeps the area after the static data, below anything either heap hands out
    expect(owner.raw.getScratch() + HASH_SCRATCH_BYTES).toBeLessThanOrEqual(owner.raw.heapBase());
    expect(k.allocatedBytes).toBe(HASH_SCRATCH_BYTES);

    const size = owner.memory.buffer.byteLength;
    const regions = [];
    let full: unknown;
    for (let i = 0; i < 100 && !full; i++) {
      try {
        regions.push(k.alloc(5000, 64));
      } catch (err) {
        full = err;
      }
    }
    expect(full).toMatchObject({ code: "ARENA_FULL", message: expect.stringContaining("never grows") });
    expect(regions.length).toBe(Math.floor((arena.bytes - HASH_SCRATCH_BYTES) / 5056)); // 5000 → 5008 bytes, 64-aligned
    for (const r of regions) {
      expect(r.ptr).toBeGreaterThanOrEqual(arena.ptr);
      expect(r.ptr + r.bytes).toBeLessThanOrEqual(arena.ptr + arena.bytes);
    }
    expect(() => k.alloc(1 << 20)).toThrowError(expect.objectContaining({ code: "ARENA_FULL" }));
    expect(owner.memory.buffer.byteLength).toBe(size);
    // freed space is reused; zeroed allocations are zero even over reused bytes
    k.bytes(regions[3]).fill(7);
    k.free(regions[3]);
    const again = k.alloc(4000, 64, true);
    expect(again.ptr).toBe(regions[3].ptr);
    expect(k.bytes(again).every((b) => b === 0)).toBe(true);

    // the owner hands the arena back once; a plain region is not an arena
    owner.freeArena(arena);
    expect(() => owner.freeArena(arena)).toThrowError(expect.objectContaining({ code: "REGION_NOT_LIVE" }));
    const plain = owner.alloc(64);
    expect(() => owner.freeArena(plain)).toThrowError(expect.objectContaining({ code: "REGION_NOT_LIVE" }));
    owner.free(plain);
  });

  it("an arena too small for the scratch, or a descriptor that is not an arena, is refused", async () => {
    const tiny = owner.arena(HASH_SCRATCH_BYTES - 16);
    await expect(createKernel({ arena: tiny })).rejects.toMatchObject({ code: "ARENA_FULL" });
    owner.freeArena(tiny);
    const a = owner.arena(4096);
    await expect(createKernel({ arena: { ...a, ptr: 0 } })).rejects.toMatchObject({ code: "ARENA_INVALID" });
    await expect(createKernel({ arena: { ...a, ptr: 64 } })).rejects.toMatchObject({ code: "ARENA_INVALID" });
    await expect(createKernel({ arena: { ...a, bytes: owner.memory.buffer.byteLength } })).rejects.toMatchObject({
      code: "ARENA_INVALID",
    });
    await expect(createKernel({ arena: { ...a, build: "fast" as "debug" } })).rejects.toMatchObject({
      code: "ARENA_INVALID",
    });
    await expect(createKernel({ arena: { ...a, memory: {} as WebAssembly.Memory } })).rejects.toMatchObject({
      code: "ARENA_INVALID",
    });
    owner.freeArena(a);
  });

  it("instantiating another instance on the memory writes nothing: not the owner's scratch, not the heap", async () => {
    const ram = owner.alloc(4 * PAGE_SIZE, PAGE_SIZE);
    fillRam(owner, ram, 3);
    const arenas = [owner.arena(64 * 1024), owner.arena(64 * 1024)];
    // the owner's scratch now holds a seed-derived secret and accumulators; the heap above it bytes of all kinds
    const out = new BigUint64Array(8);
    owner.hashPages(owner.bytes(ram), 4, out, { bits: 128, seed: 0x1234_5678_9abc_def0n });
    const scratch = owner.raw.getScratch();
    expect(owner.bytes({ ptr: scratch, bytes: HASH_SCRATCH_BYTES }).some((b) => b !== 0)).toBe(true);
    const before = new Uint8Array(owner.memory.buffer).slice();
    // with the module the arena carries, and compiled anew from its build
    const attached = [
      await createKernel({ arena: arenas[0] }),
      await createKernel({ arena: { ...arenas[1], module: undefined } }),
    ];
    expect(Buffer.compare(new Uint8Array(owner.memory.buffer), before)).toBe(0);
    // and the owner's next hashes are unchanged
    const again = new BigUint64Array(8);
    owner.hashPages(owner.bytes(ram), 4, again, { bits: 128, seed: 0x1234_5678_9abc_def0n });
    expect(again).toEqual(out);
    expect(attached.map((k) => k.raw.getScratch())).toEqual(arenas.map((a) => a.ptr));
    for (const a of arenas) owner.freeArena(a);
    owner.free(ram);
  });

  it("kernel calls write no static data: the scan, the encode pipeline and the applier use per-instance scratch", async () => {
    // a static scratch would be shared by every instance on the memory and re-zeroed by each
    // instantiation (its data segment): a migration on one kernel must leave static data as it was
    const pages = 256;
    const pair = await createMigrationPair({ pages, kernels: "one", mode: "precopy", source: { maxRounds: 2 } });
    const k = pair.kernels[0];
    const ram = pair.src.bytes();
    const r = rng(8);
    for (let p = 0; p < pages; p++) {
      if (p % 4 === 0) continue; // zero pages
      if (p % 5 === 0)
        ram.copyWithin(p * PAGE_SIZE, PAGE_SIZE, 2 * PAGE_SIZE); // duplicates
      else for (let j = 0; j < 32; j++) ram[p * PAGE_SIZE + randInt(r, PAGE_SIZE)] = randInt(r, 256);
    }
    const staticEnd = (k.raw.heapBase() >>> 0) - HASH_SCRATCH_BYTES; // then the owner's scratch, then the heap
    const before = new Uint8Array(k.memory.buffer, 0, staticEnd).slice();
    const log = new HashDirtyLog(k, pair.src.region, pages, { seed: 3n });
    ram[5 * PAGE_SIZE] ^= 1;
    expect([...log.harvest().collect()]).toEqual([5]);
    log.dispose();
    const { report, result } = await pair.run();
    expect(result.committed).toBe(true);
    expect(report.ram.duplicate).toBeGreaterThan(0); // zero pages (QEMU counts them as "duplicate")
    const changed = [...new Uint8Array(k.memory.buffer, 0, staticEnd)].flatMap((b, i) => (b !== before[i] ? [i] : []));
    expect(changed).toEqual([]);
  });

  it("owner and attached kernels interleaved on one thread hash as the reference does", async () => {
    const ram = owner.alloc(8 * PAGE_SIZE, PAGE_SIZE);
    fillRam(owner, ram, 5);
    const arenas = [owner.arena(32 * 1024), owner.arena(32 * 1024)];
    const kernels = [owner, ...(await Promise.all(arenas.map((arena) => createKernel({ arena }))))];
    const ref64 = await createXXHash3(0xdeadbeef, 0x12345678);
    const ref128 = await createXXHash128(0xdeadbeef, 0x12345678);
    const seed = 0x12345678_deadbeefn;
    for (let p = 0; p < 8; p++) {
      const page = kernels[p % 3].bytes({ ptr: ram.ptr + p * PAGE_SIZE, bytes: PAGE_SIZE });
      ref64.init().update(page);
      ref128.init().update(page);
      const w64 = BigInt(`0x${ref64.digest("hex")}`);
      const w128 = BigInt(`0x${ref128.digest("hex")}`);
      for (const k of kernels) {
        expect(k.hashPage(page, seed)).toBe(w64);
        expect(k.hashPage128(page, seed)).toEqual({ low: w128 & ((1n << 64n) - 1n), high: w128 >> 64n });
      }
    }
    const lists = kernels.map((k) => {
      const out = new BigUint64Array(16);
      hashPageList(k, k.bytes(ram), Uint32Array.of(7, 0, 3, 3, 5, 1, 2, 6), out, { bits: 128, seed });
      return out;
    });
    expect(lists[1]).toEqual(lists[0]);
    expect(lists[2]).toEqual(lists[0]);
    for (const a of arenas) owner.freeArena(a);
    owner.free(ram);
  });
});

describe("kernel arenas in Workers", () => {
  let owner: Kernel;
  let ram: { ptr: number; bytes: number };
  let jobs: HashJob[];
  beforeAll(async () => {
    owner = await createKernel({ shared: true });
    ram = owner.alloc(RAM_PAGES * PAGE_SIZE, PAGE_SIZE);
    fillRam(owner, ram, 11);
    jobs = expectedJobs(owner, ram);
  });

  it("three Workers with their own instances and the owner, hashing concurrently, all get the single-threaded results", async () => {
    const view = owner.bytes(ram);
    let ownerCalls = 0;
    let ownerMismatches = 0;
    let grownTo = 0;
    const { results, arenas } = await runWorkers(owner, ram, jobs, {
      workers: 3,
      rounds: 16_000,
      maxMs: 60_000,
      alongside(control) {
        // the owner grows the shared memory under the running workers, then hashes with them
        const big = owner.alloc(16 << 20);
        grownTo = owner.memory.buffer.byteLength;
        const r = rng(17);
        const deadline = Date.now() + 90_000;
        while (Atomics.load(control, 2) < 3 && Date.now() < deadline) {
          const job = jobs[randInt(r, jobs.length)];
          if (job.kind !== "pages") continue;
          const w = job.bits / 64;
          const count = 1 + randInt(r, 64);
          const first = randInt(r, RAM_PAGES - count + 1);
          const got = new BigUint64Array(count * w);
          owner.hashPages(owner.bytes({ ptr: ram.ptr + first * PAGE_SIZE, bytes: count * PAGE_SIZE }), count, got, job);
          if (got.some((v, i) => v !== job.expected[first * w + i])) ownerMismatches++;
          ownerCalls++;
        }
        owner.free(big);
      },
    });
    expect(view.byteLength).toBe(RAM_PAGES * PAGE_SIZE);
    const scratches = results.map((r) => r.ownScratch);
    for (const [i, r] of results.entries()) {
      expect(r.mismatches, `worker ${i}: ${r.firstMismatch}`).toBe(0);
      expect(r.calls).toBe(16_000);
      expect(r.pages).toBeGreaterThan(16_000);
      expect(r.copies, "guest RAM is used in place").toBe(0);
      expect(r.memoryBytes, "the worker sees the owner's growth").toBe(grownTo);
      expect(r.ownScratch).toBeGreaterThanOrEqual(arenas[i].ptr);
      expect(r.ownScratch).toBeLessThan(arenas[i].ptr + arenas[i].bytes);
    }
    expect(new Set(scratches).size).toBe(3);
    expect(ownerMismatches).toBe(0);
    expect(ownerCalls).toBeGreaterThan(0);
    for (const a of arenas) owner.freeArena(a);
  });

  it("instances sharing one scratch (the kernel before setScratch) give wrong hashes when they run concurrently", async () => {
    // the control experiment for the test above: the same workers, each told to use the
    // owner's scratch as every instance did before setScratch, with different seeds each
    const { results, arenas } = await runWorkers(owner, ram, jobs, {
      workers: 2,
      rounds: Number.POSITIVE_INFINITY,
      maxMs: 10_000,
      stopOnMismatch: true,
      scratch: owner.raw.getScratch(),
      seedsByWorker: [
        [0x9e3779b97f4a7c15n, 1n],
        [0xdeadbeefn, 0xffffffffffffffffn],
      ],
    });
    expect(results.reduce((n, r) => n + r.mismatches, 0)).toBeGreaterThan(0);
    for (const a of arenas) owner.freeArena(a);
  });
});
