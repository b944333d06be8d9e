// FrameCutter over every kind of split of a stream into chunks, without sockets: the
// chunks are exactly the ones chosen here.
import { describe, expect, it } from "vitest";
import { FrameCutter } from "../../src/transport/frame-cutter.js";
import { FramePool } from "../../src/transport/frame-pool.js";
import { FrameQueue } from "../../src/transport/transport.js";
import { FRAME_HEADER_BYTES, frameSize } from "../../src/wire/frame.js";
import { randInt, rng } from "../support/random.js";
import { checkFrame, EDGE_LENGTHS, growingSink, makeFrame } from "./frames.js";

const MAX = 2 << 20;
const code = (c: string) => expect.objectContaining({ code: c });
const tick = () => new Promise<void>((r) => setImmediate(r));

function stream(lengths: readonly number[]): { bytes: Uint8Array; starts: number[] } {
  const frames = lengths.map((l, n) => makeFrame(n, l));
  const bytes = new Uint8Array(frames.reduce((a, f) => a + f.length, 0));
  const starts: number[] = [];
  let at = 0;
  for (const f of frames) {
    starts.push(at);
    bytes.set(f, at);
    at += f.length;
  }
  return { bytes, starts };
}

/** Chunk boundaries (ends) for a stream of `total` bytes. */
type Split = (total: number, starts: number[]) => number[];

const SPLITS: Record<string, Split> = {
  "one chunk (every frame in it)": (total) => [total],
  "1-byte chunks": (total) => Array.from({ length: total }, (_, i) => i + 1),
  "every header split, at each offset 1..15 in turn": (total, starts) => {
    const ends = starts.map((s, k) => s + 1 + (k % (FRAME_HEADER_BYTES - 1))).filter((e) => e < total);
    return [...ends, total];
  },
  "random chunks, 1 byte to 300 KiB": (total) => {
    const r = rng(3);
    const ends: number[] = [];
    for (let at = 0; at < total; ) {
      at = Math.min(total, at + 1 + randInt(r, r() < 0.3 ? 40 : 300 << 10));
      ends.push(at);
    }
    return ends;
  },
};

/** Lengths: the edge cases, then a seeded mix of small and large frames (many small ones share a chunk). */
function lengths(): number[] {
  const r = rng(9);
  const mix = Array.from({ length: 60 }, () => (r() < 0.6 ? randInt(r, 300) : randInt(r, 1_200_000)));
  return [...EDGE_LENGTHS, ...mix];
}

type Consumer = "queued (receive after all arrived)" | "waiting receiveInto" | "mixed";

async function run(split: Split, consumer: Consumer, lens: number[]) {
  const { bytes, starts } = stream(lens);
  const queue = new FrameQueue();
  const pool = new FramePool({ maxFreeBytes: 16 << 20 });
  const cutter = new FrameCutter(queue, pool, MAX);
  const ends = split(bytes.length, starts);
  const got: Uint8Array[] = [];
  const sink = growingSink();
  const r = rng(21);
  // the consumer runs concurrently with the chunks (it is waiting whenever the test yields)
  const consume = (async () => {
    if (consumer.startsWith("queued")) return;
    for (;;) {
      if (consumer === "mixed" && r() < 0.5) {
        const f = await queue.next();
        if (!f) return;
        got.push(f);
      } else {
        const n = await queue.nextInto(sink.sink);
        if (n === null) return;
        got.push(sink.last().slice(0, n));
      }
      if (consumer === "mixed" && r() < 0.3) await tick();
    }
  })();
  let from = 0;
  for (const end of ends) {
    // a reused read buffer: the chunk's bytes are overwritten after push()
    const chunk = bytes.slice(from, end);
    cutter.push(chunk);
    chunk.fill(0xee);
    from = end;
    if (consumer !== "queued (receive after all arrived)" && (ends.length < 2000 || r() < 0.01)) await tick();
  }
  expect(cutter.partial).toBeNull();
  cutter.end();
  if (consumer.startsWith("queued")) for (let f = await queue.next(); f; f = await queue.next()) got.push(f);
  await consume;
  expect(got.length).toBe(lens.length);
  for (let n = 0; n < lens.length; n++) checkFrame(got[n], n, lens[n]);
  return { direct: cutter.direct, pool: pool.stats };
}

describe("FrameCutter", () => {
  for (const [name, split] of Object.entries(SPLITS)) {
    for (const consumer of ["queued (receive after all arrived)", "waiting receiveInto", "mixed"] as const) {
      it(`frames of many sizes arrive intact and in order: ${name}, ${consumer}`, async () => {
        const lens = name.startsWith("1-byte") ? lengths().filter((l) => l < 70_000) : lengths();
        const { direct, pool } = await run(split, consumer, lens);
        if (consumer === "waiting receiveInto") expect(direct).toBeGreaterThan(0);
        if (consumer.startsWith("queued")) expect(direct).toBe(0);
        // a consumer that keeps up gives every pooled buffer back before the next frame of
        // its size class: at most one allocation per class, however many frames
        if (consumer === "waiting receiveInto" && !name.startsWith("one chunk")) {
          const sizes = lens.map((l) => frameSize(l, false)).filter((s) => s >= 64 << 10);
          const classes = new Set(sizes.map((s) => FramePool.capacity(s))).size;
          expect(pool.allocations).toBeLessThanOrEqual(classes);
          expect(pool.allocations).toBeLessThan(sizes.length);
        }
      });
    }
  }

  it("an oversized announced frame is rejected at its header, before any payload is buffered", () => {
    const pool = new FramePool();
    const queue = new FrameQueue();
    const cutter = new FrameCutter(queue, pool, 1 << 20);
    const frame = makeFrame(0, 100);
    new DataView(frame.buffer).setUint32(12, (1 << 20) + 1, true);
    cutter.push(frame.subarray(0, 9));
    expect(cutter.partial).toEqual({ got: 9, need: FRAME_HEADER_BYTES });
    expect(() => cutter.push(frame.subarray(9, 16))).toThrowError(code("FRAME_TOO_LARGE"));
    expect(pool.stats).toMatchObject({ allocations: 0, small: 0 });
  });

  it("bad magic and version are rejected at the header too", () => {
    for (const [at, v, c] of [
      [0, 0x41, "FRAME_MAGIC"],
      [4, 9, "PROTOCOL_VERSION"],
    ] as const) {
      const f = makeFrame(0, 10);
      f[at] = v;
      const cutter = new FrameCutter(new FrameQueue(), new FramePool(), MAX);
      expect(() => cutter.push(f)).toThrowError(code(c));
    }
  });

  it("reports a partial frame (header or body) and fails or ends a consumer it is writing to", async () => {
    const queue = new FrameQueue();
    const cutter = new FrameCutter(queue, new FramePool(), MAX);
    const f = makeFrame(0, 100_000);
    const sink = growingSink();
    const pending = queue.nextInto(sink.sink);
    cutter.push(f.subarray(0, 5000));
    expect(cutter.partial).toEqual({ got: 5000, need: frameSize(100_000, false) });
    expect(cutter.direct).toBe(0); // counted once complete
    cutter.fail(new Error("boom"));
    await expect(pending).rejects.toThrow("boom");

    const q2 = new FrameQueue();
    const c2 = new FrameCutter(q2, new FramePool(), MAX);
    const p2 = q2.nextInto(sink.sink);
    c2.push(f.subarray(0, 5000));
    c2.end();
    await expect(p2).resolves.toBeNull();
  });

  it("a consumer that starts waiting mid-frame takes the frame over from the pooled buffer", async () => {
    const queue = new FrameQueue();
    const pool = new FramePool();
    const cutter = new FrameCutter(queue, pool, MAX);
    const f = makeFrame(7, 300_000);
    cutter.push(f.subarray(0, 100_000)); // nobody waits: into a pooled buffer
    expect(pool.stats.allocations).toBe(1);
    const sink = growingSink();
    const pending = queue.nextInto(sink.sink);
    cutter.push(f.subarray(100_000)); // the waiting consumer claims it: the buffer goes back
    expect(await pending).toBe(f.length);
    checkFrame(sink.last().subarray(0, f.length), 7, 300_000);
    expect(pool.stats).toMatchObject({ releases: 1, freeBytes: FramePool.capacity(f.length) });
    expect(cutter.direct).toBe(1);
  });
});
