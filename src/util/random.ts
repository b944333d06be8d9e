// Seeded pseudo-random numbers for workloads and the simulator: no Math.random anywhere,
// so a run is a pure function of its seed.

/** mulberry32: a 32-bit state PRNG returning floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A 32-bit mix of several integers (murmur3 finalizer): seeds per page, per write. */
export function mixSeed(...xs: number[]): number {
  let h = 0x9e3779b9;
  for (const x of xs) {
    h = Math.imul(h ^ (x >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** Integer in [0, n). */
export function randomInt(r: () => number, n: number): number {
  return Math.floor(r() * n);
}

/**
 * Zipf(s) ranks 0..n-1 by inverse transform over a cumulative table (8 bytes per rank).
 * Rank 0 is the hottest.
 */
export class ZipfSampler {
  readonly #cdf: Float64Array;
  constructor(
    readonly n: number,
    readonly exponent: number,
  ) {
    this.#cdf = new Float64Array(n);
    let sum = 0;
    for (let i = 0; i < n; i++) this.#cdf[i] = sum += 1 / (i + 1) ** exponent;
    for (let i = 0; i < n; i++) this.#cdf[i] /= sum;
  }

  sample(r: () => number): number {
    const u = r();
    let lo = 0;
    let hi = this.n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** A bijection of 0..n-1 (so hot ranks spread over memory): rank × a + b mod n with gcd(a, n) = 1. */
export function scatter(n: number, seed: number): (rank: number) => number {
  const gcd = (x: number, y: number): number => (y === 0 ? x : gcd(y, x % y));
  let a = (mixSeed(seed, 1) % n) | 1;
  while (n > 1 && gcd(a, n) !== 1) a = (a + 2) % n || 1;
  const b = mixSeed(seed, 2) % n;
  return (rank) => Number((BigInt(rank) * BigInt(a) + BigInt(b)) % BigInt(n));
}
