import { describe, expect, it } from "vitest";
import { createInProcessPair } from "../../src/transport/in-process.js";
import { frameSize } from "../../src/wire/frame.js";
import { randInt, rng } from "../support/random.js";
import { checkFrame, growingSink, makeFrame, sendFrames } from "./frames.js";

const MiB = 1 << 20;

describe("in-process pair: pooled frames", () => {
  it("a frame built in allocFrame goes to the peer as it is; receiveInto gives it back, receive keeps it", async () => {
    const [a, b] = createInProcessPair();
    const length = 200_000;
    const buf = a.allocFrame(frameSize(length, false));
    await a.send(makeFrame(0, length, buf));
    const sink = growingSink();
    expect(await b.receiveInto(sink.sink)).toBe(frameSize(length, false));
    checkFrame(sink.last().subarray(0, frameSize(length, false)), 0, length);
    expect(a.poolStats).toMatchObject({ allocations: 1, releases: 1 });
    expect(a.allocFrame(frameSize(length, false))).toBe(buf); // reused

    await sendFrames(a, [length], 1);
    const kept = await b.receive();
    expect(a.poolStats.releases).toBe(1); // handed over: not given back
    await sendFrames(a, [length, length], 2);
    await b.receive();
    await b.receive();
    checkFrame(kept!, 1, length);
    expect(b.bytesReceived).toBe(4 * frameSize(length, false));
  });

  it("pooled buffers are never handed out while in use: fill patterns, a slow mixed reader, a small buffer", async () => {
    const [a, b] = createInProcessPair({ bufferBytes: 2 * MiB });
    const r = rng(12);
    const lengths = Array.from({ length: 300 }, () => (r() < 0.3 ? randInt(r, 500) : 60_000 + randInt(r, 400_000)));
    const sink = growingSink();
    const kept: Array<[number, Uint8Array]> = [];
    const reader = (async () => {
      for (let n = 0; n < lengths.length; n++) {
        if (n % 3 === 0) {
          const f = (await b.receive())!;
          checkFrame(f, n, lengths[n]);
          kept.push([n, f]);
        } else {
          const size = (await b.receiveInto(sink.sink))!;
          checkFrame(sink.last().subarray(0, size), n, lengths[n]);
        }
        if (r() < 0.2) await new Promise((res) => setTimeout(res, 1));
      }
    })();
    await Promise.all([sendFrames(a, lengths), reader]);
    for (const [n, f] of kept) checkFrame(f, n, lengths[n], "kept");
    expect(a.poolStats.reuses).toBeGreaterThan(a.poolStats.allocations);
  });

  it("close: a pending receiveInto resolves null without touching its sink", async () => {
    const [a, b] = createInProcessPair();
    let calls = 0;
    const p = b.receiveInto((n) => (calls++, new Uint8Array(n)));
    b.close();
    await expect(p).resolves.toBeNull();
    expect(calls).toBe(0);
    await expect(a.send(makeFrame(0, 10))).rejects.toMatchObject({ code: "CONNECTION_CLOSED" });
  });
});
