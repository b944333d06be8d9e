import { describe, expect, it } from "vitest";
import { FramePool } from "../../src/transport/frame-pool.js";
import { randInt, rng } from "../support/random.js";

const KiB = 1024;
const MiB = 1 << 20;

describe("FramePool", () => {
  it("capacities: quarter-octave classes from 64 KiB, never below the size, at most 1.25 times it", () => {
    expect(FramePool.capacity(64 * KiB)).toBe(64 * KiB);
    expect(FramePool.capacity(64 * KiB + 1)).toBe(80 * KiB);
    expect(FramePool.capacity(MiB)).toBe(MiB);
    expect(FramePool.capacity(MiB + 20)).toBe(MiB + MiB / 4);
    expect(FramePool.capacity(MiB + MiB / 4 + 1)).toBe(MiB + MiB / 2);
    expect(FramePool.capacity(8 * MiB + 52)).toBe(10 * MiB);
    const r = rng(5);
    for (let t = 0; t < 2000; t++) {
      const size = 64 * KiB + randInt(r, 16 * MiB);
      const cap = FramePool.capacity(size);
      expect(cap).toBeGreaterThanOrEqual(size);
      expect(cap).toBeLessThanOrEqual(size * 1.25);
      expect(FramePool.capacity(cap)).toBe(cap);
    }
  });

  it("frames below minBytes are plain allocations, not pooled", () => {
    const pool = new FramePool();
    const b = pool.acquire(100);
    expect(b.length).toBe(100);
    expect(pool.owns(b)).toBe(false);
    pool.release(b);
    expect(pool.stats).toMatchObject({ small: 1, allocations: 0, releases: 0, freeBytes: 0 });
  });

  it("a released buffer is handed out again for a frame of its class; allocations are counted by the hook", () => {
    let allocated = 0;
    const pool = new FramePool({ allocate: (n) => (allocated++, new Uint8Array(n)) });
    const a = pool.acquire(MiB + 20);
    expect(a.length).toBe(MiB + MiB / 4);
    expect(pool.owns(a.subarray(0, 10))).toBe(true);
    pool.release(a.subarray(0, MiB + 20)); // any view of it
    expect(pool.owns(a)).toBe(false);
    const b = pool.acquire(MiB + 1000); // same class
    expect(b).toBe(a);
    const c = pool.acquire(MiB + 1000); // the class is empty again: a new one
    expect(c).not.toBe(a);
    expect(allocated).toBe(2);
    expect(pool.stats).toMatchObject({ allocations: 2, reuses: 1, releases: 1, drops: 0 });
  });

  it("a buffer released twice, or not from this pool, is ignored: never in the free list twice", () => {
    const pool = new FramePool();
    const a = pool.acquire(100 * KiB);
    pool.release(a);
    pool.release(a);
    pool.release(new Uint8Array(100 * KiB));
    expect(pool.stats).toMatchObject({ releases: 1, freeBytes: a.length });
    expect(pool.acquire(100 * KiB)).toBe(a);
    expect(pool.acquire(100 * KiB)).not.toBe(a);
  });

  it("keeps at most maxFreeBytes: buffers released beyond it are dropped", () => {
    const pool = new FramePool({ maxFreeBytes: 2 * MiB });
    const bufs = [1, 2, 3].map(() => pool.acquire(MiB));
    for (const b of bufs) pool.release(b);
    expect(pool.stats).toMatchObject({ releases: 3, drops: 1, freeBytes: 2 * MiB });
    pool.clear();
    expect(pool.stats.freeBytes).toBe(0);
  });

  it("never hands out a buffer in use: seeded acquire/release with every owner's bytes checked at release", () => {
    const pool = new FramePool({ maxFreeBytes: 8 * MiB });
    const r = rng(17);
    const live: Array<{ buf: Uint8Array; size: number; id: number }> = [];
    let acquired = 0;
    for (let id = 0; id < 3000; id++) {
      if (live.length > 0 && (live.length > 40 || r() < 0.5)) {
        const { buf, size, id: owner } = live.splice(randInt(r, live.length), 1)[0];
        for (let i = 0; i < size; i += 997) expect(buf[i], `buffer of ${owner}`).toBe(owner & 0xff);
        pool.release(buf);
      } else {
        const size = 64 * KiB + randInt(r, 448 * KiB);
        const buf = pool.acquire(size);
        acquired++;
        for (const l of live) expect(l.buf.buffer).not.toBe(buf.buffer);
        for (let i = 0; i < size; i += 997) buf[i] = id & 0xff;
        live.push({ buf, size, id });
      }
    }
    const s = pool.stats;
    expect(s.allocations + s.reuses).toBe(acquired);
    expect(s.reuses).toBeGreaterThan(s.allocations);
  });
});
