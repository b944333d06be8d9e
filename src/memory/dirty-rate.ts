// Dirty-rate estimation by page sampling, after QEMU's calc-dirty-rate (page-sampling mode).
//
//   start():  pick n = samplePagesPerGiB × GiB distinct random pages; H0 = XXH3-128 of each
//   ... the guest runs for t seconds ...
//   finish(): H1 = XXH3-128 of the same pages; d = #(H1 != H0)
//             p = d / n,  dirty pages ≈ p × N,  rate = p × N / t  pages/s
//
// The error estimate is a Wilson score interval for p (exact enough at p near 0 or 1,
// where the normal approximation fails) with the finite-population correction
// sqrt((N - n) / (N - 1)) because pages are drawn without replacement; the bounds
// scale to pages/s like the estimate. As in QEMU, what is measured is the number of
// distinct pages whose content differs after t seconds, not the number of writes.
//
// see: QEMU migration/dirtyrate.c (DIRTYRATE_DEFAULT_SAMPLE_PAGES = 512 per GiB,
// get_ramblock_vfn_hash / calc_page_dirty_rate); Wilson (1927).
import { PagewireRangeError } from "../errors.js";
import { PAGE_SIZE } from "../kernel/abi.js";
import { hashPageList, randomSeed } from "../kernel/pagehash.js";
import type { Kernel } from "../kernel/kernel.js";
import type { PageRangeReader, ScannedMemory } from "./hash-dirty-log.js";

const PAGES_PER_GIB = (1 << 30) / PAGE_SIZE;

export interface DirtyRateOptions {
  /** Sampled pages per GiB of guest memory (QEMU's sample-pages). Default 512. */
  samplePagesPerGiB?: number;
  /** Two-sided confidence of the interval. Default 0.95. */
  confidence?: 0.9 | 0.95 | 0.99 | 0.999;
  /** Seed of the page choice (a seeded xorshift), default random. */
  sampleSeed?: number;
  /** XXH3 seed, default random. */
  hashSeed?: bigint;
}

export interface DirtyRateEstimate {
  pageCount: number;
  /** Pages sampled. */
  sampledPages: number;
  /** Sampled pages whose content changed. */
  dirtySampled: number;
  /** Estimated share of pages dirtied during the interval, and its interval. */
  dirtyFraction: number;
  dirtyFractionLow: number;
  dirtyFractionHigh: number;
  /** Estimated pages dirtied during the interval (dirtyFraction × pageCount). */
  dirtyPages: number;
  /** Interval length in seconds. */
  seconds: number;
  /** Estimated dirty pages per second, with its confidence interval. */
  pagesPerSecond: number;
  pagesPerSecondLow: number;
  pagesPerSecondHigh: number;
  /** QEMU's unit: MiB of pages dirtied per second. */
  dirtyRateMiBps: number;
  confidence: number;
}

const Z: Record<number, number> = { 0.9: 1.6449, 0.95: 1.96, 0.99: 2.5758, 0.999: 3.2905 };

/** Memory the sampler reads in place: a kernel region or a byte array. */
export type SampledMemory = Exclude<ScannedMemory, PageRangeReader>;

/** Samples random pages, hashes them now and again later: QEMU-style dirty-rate measurement. */
export class DirtyRateSampler {
  readonly kernel: Kernel;
  readonly pageCount: number;
  readonly sample: Uint32Array;
  readonly confidence: number;
  readonly hashSeed: bigint;
  readonly #memory: SampledMemory;
  #before: BigUint64Array | null = null;
  #startedAt = 0;

  constructor(kernel: Kernel, memory: SampledMemory, pageCount: number, options: DirtyRateOptions = {}) {
    const bytes = memory instanceof Uint8Array ? memory.byteLength : memory.bytes;
    if (!Number.isInteger(pageCount) || pageCount <= 0 || pageCount * PAGE_SIZE > bytes) {
      throw new PagewireRangeError(
        "PAGE_COUNT",
        `DirtyRateSampler: ${pageCount} pages need ${pageCount * PAGE_SIZE} bytes of memory, got ${bytes}`,
      );
    }
    const perGiB = options.samplePagesPerGiB ?? 512;
    if (!(perGiB > 0))
      throw new PagewireRangeError("SAMPLE_SIZE", `DirtyRateSampler: samplePagesPerGiB must be > 0, got ${perGiB}`);
    this.confidence = options.confidence ?? 0.95;
    if (!(this.confidence in Z))
      throw new PagewireRangeError(
        "CONFIDENCE",
        `DirtyRateSampler: confidence must be one of 0.9, 0.95, 0.99, 0.999, got ${this.confidence}`,
      );
    this.kernel = kernel;
    this.pageCount = pageCount;
    this.hashSeed = options.hashSeed ?? randomSeed();
    this.#memory = memory;
    const n = Math.min(pageCount, Math.max(1, Math.round((perGiB * pageCount) / PAGES_PER_GIB)));
    this.sample = samplePages(pageCount, n, options.sampleSeed ?? (Math.random() * 2 ** 32) >>> 0);
  }

  /** Hashes the sampled pages (the "before" picture) and starts the clock. */
  start(): void {
    this.#before = this.#hash();
    this.#startedAt = performance.now();
  }

  /**
   * Hashes the sampled pages again and returns the estimate. `seconds` defaults to the
   * wall time since `start()` (pass the guest's run time when it is known, e.g. virtual time).
   */
  finish(seconds?: number): DirtyRateEstimate {
    if (!this.#before) throw new PagewireRangeError("NOT_STARTED", "DirtyRateSampler.finish: call start() first");
    const t = seconds ?? (performance.now() - this.#startedAt) / 1000;
    if (!(t > 0)) throw new PagewireRangeError("INTERVAL", `DirtyRateSampler.finish: interval must be > 0 s, got ${t}`);
    const after = this.#hash();
    const a = new Uint32Array(this.#before.buffer),
      b = new Uint32Array(after.buffer);
    let d = 0;
    for (let i = 0; i < this.sample.length; i++) {
      const o = 4 * i;
      if (a[o] !== b[o] || a[o + 1] !== b[o + 1] || a[o + 2] !== b[o + 2] || a[o + 3] !== b[o + 3]) d++;
    }
    this.#before = after; // a later finish() measures the next interval
    this.#startedAt = performance.now();
    return estimateFromSample(this.pageCount, this.sample.length, d, t, this.confidence);
  }

  #hash(): BigUint64Array {
    const k = this.kernel;
    const m = this.#memory;
    const mem = m instanceof Uint8Array ? m : k.bytes(m);
    return hashPageList(
      k,
      mem.subarray(0, this.pageCount * PAGE_SIZE),
      this.sample,
      new BigUint64Array(2 * this.sample.length),
      { bits: 128, seed: this.hashSeed },
    );
  }
}

/** Turns "d of n sampled pages changed in t seconds, N pages in all" into an estimate with its interval. */
export function estimateFromSample(
  pageCount: number,
  sampled: number,
  dirtySampled: number,
  seconds: number,
  confidence = 0.95,
): DirtyRateEstimate {
  const z = Z[confidence] ?? 1.96;
  const n = sampled,
    N = pageCount;
  const p = dirtySampled / n;
  // Wilson score interval, with the finite-population correction applied to z²/n
  const fpc = N > 1 ? (N - n) / (N - 1) : 0;
  const z2 = (z * z * fpc) / n;
  const centre = (p + z2 / 2) / (1 + z2);
  const half = Math.sqrt(z2 * (p * (1 - p) + z2 / 4)) / (1 + z2);
  const low = Math.max(0, centre - half),
    high = Math.min(1, centre + half);
  return {
    pageCount: N,
    sampledPages: n,
    dirtySampled,
    dirtyFraction: p,
    dirtyFractionLow: low,
    dirtyFractionHigh: high,
    dirtyPages: p * N,
    seconds,
    pagesPerSecond: (p * N) / seconds,
    pagesPerSecondLow: (low * N) / seconds,
    pagesPerSecondHigh: (high * N) / seconds,
    dirtyRateMiBps: (p * N * PAGE_SIZE) / (1 << 20) / seconds,
    confidence,
  };
}

/** `n` distinct pages of 0..N-1, ascending (Floyd's sampling with a seeded xorshift32). */
export function samplePages(N: number, n: number, seed: number): Uint32Array {
  let x = seed >>> 0 || 0x9e3779b9;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  const chosen = new Set<number>();
  for (let j = N - n; j < N; j++) {
    const t = Math.floor((next() / 4294967296) * (j + 1));
    chosen.add(chosen.has(t) ? j : t);
  }
  return Uint32Array.from([...chosen].sort((a, b) => a - b));
}

/**
 * Measures the dirty rate over `intervalMs` of wall time (QEMU calc-dirty-rate with
 * calc-time): start, wait, finish. The guest must be running meanwhile.
 */
export async function measureDirtyRate(
  kernel: Kernel,
  memory: SampledMemory,
  pageCount: number,
  intervalMs = 1000,
  options: DirtyRateOptions = {},
): Promise<DirtyRateEstimate> {
  const s = new DirtyRateSampler(kernel, memory, pageCount, options);
  s.start();
  await new Promise((r) => setTimeout(r, intervalMs));
  return s.finish();
}
