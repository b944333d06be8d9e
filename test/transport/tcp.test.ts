// The TCP transport's data path: frames cut from real socket reads (read buffers down to
// one byte, and 'data' events), pooled buffers, receive backpressure and its faults.
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { connectTcp, TcpListener, type TcpOptions, type TcpTransport } from "../../src/transport/tcp.js";
import { FRAME_HEADER_BYTES, frameSize } from "../../src/wire/frame.js";
import { randInt, rng } from "../support/random.js";
import { checkFrame, EDGE_LENGTHS, growingSink, makeFrame, sendFrames } from "./frames.js";

const MiB = 1 << 20;
const code = (c: string) => expect.objectContaining({ code: c });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const open: Array<{ destroy(): void }> = [];
afterEach(() => {
  for (const t of open.splice(0)) t.destroy();
});

/** A connected pair: `server` options for the accepted end, `client` for the connecting one. */
async function pair(server: TcpOptions = {}, client: TcpOptions = {}): Promise<{ c: TcpTransport; s: TcpTransport }> {
  const l = await TcpListener.listen("127.0.0.1", 0, server);
  const [c, s] = await Promise.all([connectTcp("127.0.0.1", l.port, client), l.accept()]);
  l.close();
  open.push(c, s);
  return { c, s };
}

/** A raw socket connected to a listener with `options`, and the transport it accepted. */
async function rawPeer(options: TcpOptions = {}): Promise<{ raw: net.Socket; t: TcpTransport }> {
  const l = await TcpListener.listen("127.0.0.1", 0, options);
  const raw = net.connect(l.port, "127.0.0.1");
  raw.on("error", () => {});
  const t = await l.accept();
  l.close();
  open.push(t, raw);
  return { raw, t };
}

/** Receives `lengths.length` frames, alternating receive and receiveInto at random, with random pauses. */
async function receiveAll(t: TcpTransport, lengths: readonly number[], seed: number, keepEvery = 0) {
  const r = rng(seed);
  const sink = growingSink();
  const kept: Array<[number, Uint8Array]> = [];
  for (let n = 0; n < lengths.length; n++) {
    if ((keepEvery && n % keepEvery === 0) || (!keepEvery && r() < 0.3)) {
      const f = await t.receive();
      if (!f) throw new Error(`frame ${n}: end of stream`);
      checkFrame(f, n, lengths[n], "received");
      kept.push([n, f]);
    } else {
      const size = await t.receiveInto(sink.sink);
      if (size === null) throw new Error(`frame ${n}: end of stream`);
      checkFrame(sink.last().subarray(0, size), n, lengths[n], "received into");
    }
    if (r() < 0.05) await sleep(randInt(r, 3));
  }
  // frames handed over by receive() are the caller's: still intact after all that followed
  for (const [n, f] of kept) checkFrame(f, n, lengths[n], "kept");
}

function seededLengths(seed: number, count: number, max: number): number[] {
  const r = rng(seed);
  return Array.from({ length: count }, () => (r() < 0.5 ? randInt(r, 2000) : randInt(r, max)));
}

describe("TCP transport: frames cut from socket reads", () => {
  for (const readBufferBytes of [1, 7, 16, 17, 4093, 256 << 10, 0]) {
    const label = readBufferBytes ? `${readBufferBytes}-byte read buffer` : "'data' events";
    it(`frames of many sizes arrive intact and in order (${label}), both directions`, async () => {
      const small = readBufferBytes > 0 && readBufferBytes < 4096;
      const lengths = small
        ? [...EDGE_LENGTHS.filter((l) => l <= 4096), (64 << 10) - 20, ...seededLengths(1, 40, 3000)]
        : [...EDGE_LENGTHS, ...seededLengths(2, 80, 1_500_000)];
      const { c, s } = await pair({ readBufferBytes }, { readBufferBytes });
      expect(s.stats.readMode).toBe(readBufferBytes ? "buffer" : "data");
      expect(c.stats.readMode).toBe(readBufferBytes ? "buffer" : "data");
      await Promise.all([sendFrames(c, lengths), receiveAll(s, lengths, 3)]);
      await Promise.all([sendFrames(s, lengths), receiveAll(c, lengths, 4)]);
      expect(s.bytesReceived).toBe(lengths.reduce((a, l) => a + frameSize(l, false), 0));
    });
  }

  it("many frames per read: small frames written at once are all cut from one read", async () => {
    const { raw, t } = await rawPeer();
    const lengths = Array.from({ length: 500 }, (_, n) => n % 40);
    const bytes = Buffer.concat(lengths.map((l, n) => makeFrame(n, l)));
    raw.write(bytes);
    await receiveAll(t, lengths, 5);
  });

  it("pooled buffers are never handed out while in use: fill patterns under load, with a slow reader", async () => {
    const { c, s } = await pair({ receiveBufferBytes: 2 * MiB }, { sendBufferBytes: 2 * MiB });
    const lengths = seededLengths(6, 240, 700_000);
    await Promise.all([sendFrames(c, lengths), receiveAll(s, lengths, 7, 4)]);
    const sent = c.stats.send;
    const got = s.stats.receive;
    expect(sent.reuses).toBeGreaterThan(sent.allocations);
    expect(got.reuses).toBeGreaterThan(0);
    expect(s.stats.direct).toBeGreaterThan(0);
  });

  it("buffers are reused: 1 MiB frames allocate a bounded number of buffers, not one per frame", async () => {
    const { c, s } = await pair({ receiveBufferBytes: 4 * MiB }, { sendBufferBytes: 4 * MiB });
    const sink = growingSink();
    const run = async (first: number, count: number) => {
      const lengths = Array.from({ length: count }, () => MiB);
      const reader = (async () => {
        for (let n = first; n < first + count; n++) {
          const size = await s.receiveInto(sink.sink);
          checkFrame(sink.last().subarray(0, size!), n, MiB);
        }
      })();
      await Promise.all([sendFrames(c, lengths, first), reader]);
      return { send: c.stats.send.allocations, receive: s.stats.receive.allocations };
    };
    const warm = await run(0, 80);
    const after = await run(80, 160);
    // in use at once: what waits in the socket's queue (4 MiB) plus a frame, reached in
    // the first frames and not growing after
    expect(warm.send).toBeLessThanOrEqual(7);
    expect(after.send).toBeLessThanOrEqual(warm.send + 1);
    expect(warm.receive).toBeLessThanOrEqual(4);
    expect(after.receive).toBeLessThanOrEqual(warm.receive + 1);
    expect(c.stats.send.reuses).toBeGreaterThanOrEqual(240 - after.send);
    expect(s.stats.receive.small).toBe(0);
  });

  it("sendBorrowed: a buffer comes back once the socket wrote it; reusing it then keeps every frame intact", async () => {
    const { c, s } = await pair({}, { sendBufferBytes: MiB });
    const length = 200 << 10;
    const size = frameSize(length, false);
    // four buffers in shared memory (as kernel memory is), reused as soon as they come back
    const free = Array.from({ length: 4 }, () => new Uint8Array(new SharedArrayBuffer(size)));
    const releases = new Map<Uint8Array, number>();
    let waiting: (() => void) | null = null;
    const frames = 120;
    const lengths = Array.from({ length: frames }, () => length);
    const sending = (async () => {
      for (let n = 0; n < frames; n++) {
        while (!free.length) await new Promise<void>((r) => (waiting = r));
        const buf = free.pop()!;
        const frame = makeFrame(n, length, buf);
        let calls = 0;
        await c.sendBorrowed(frame, () => {
          releases.set(frame, ++calls);
          free.push(buf);
          waiting?.();
        });
      }
    })();
    await Promise.all([sending, receiveAll(s, lengths, 21)]);
    for (let i = 0; i < 100 && releases.size < frames; i++) await sleep(10);
    expect(releases.size).toBe(frames);
    expect([...releases.values()].every((calls) => calls === 1)).toBe(true);
    // on a closed transport the frame comes back at once and the send fails
    c.close();
    let back = 0;
    await expect(c.sendBorrowed(makeFrame(0, 10), () => back++)).rejects.toThrowError(code("CONNECTION_CLOSED"));
    expect(back).toBe(1);
  });

  it("backpressure: a receiver that does not read pauses its socket, and the sender's send() waits", async () => {
    const { c, s } = await pair({ receiveBufferBytes: MiB }, { sendBufferBytes: MiB });
    const length = 256 << 10;
    let sent = 0;
    let blocked = false;
    for (; sent < 512; sent++) {
      const buf = c.allocFrame(frameSize(length, false));
      const done = c.send(makeFrame(sent, length, buf));
      const r = await Promise.race([done.then(() => "sent"), sleep(500).then(() => "waiting")]);
      if (r === "waiting") {
        blocked = true;
        sent++;
        break;
      }
    }
    expect(blocked).toBe(true);
    // kernel socket buffers hold a few MiB; nothing near the 128 MiB offered
    expect(sent * length).toBeLessThan(48 * MiB);
    expect(s.stats.paused).toBe(true);
    expect(s.stats.pauses).toBeGreaterThanOrEqual(1);
    // the queue holds the bound, plus the frames completed by one read (256 KiB)
    expect(s.stats.queuedBytes).toBeLessThanOrEqual(MiB + (256 << 10) + frameSize(length, false));
    // reading resumes the flow: every frame arrives intact, in order
    const lengths = Array.from({ length: sent + 20 }, () => length);
    await Promise.all([sendFrames(c, lengths.slice(sent), sent), receiveAll(s, lengths, 8)]);
    expect(s.stats.paused).toBe(false);
  });

  for (const readBufferBytes of [256 << 10, 0]) {
    const label = readBufferBytes ? "read buffer" : "'data' events";
    it(`an oversized announced frame is rejected at its header, before anything is buffered (${label})`, async () => {
      const { raw, t } = await rawPeer({ maxPayload: MiB, readBufferBytes });
      const frame = makeFrame(0, 100);
      new DataView(frame.buffer).setUint32(12, MiB + 1, true);
      raw.write(frame.subarray(0, FRAME_HEADER_BYTES)); // the header alone: no payload follows
      await expect(t.receive()).rejects.toThrowError(code("FRAME_TOO_LARGE"));
      expect(t.stats.receive).toMatchObject({ allocations: 0, small: 0 });
      await new Promise((r) => (raw.destroyed ? r(null) : raw.once("close", r))); // the receiver hung up
    });

    it(`a connection closed inside a frame: frames before it arrive, then FRAME_TRUNCATED (${label})`, async () => {
      for (const cut of [5, FRAME_HEADER_BYTES + 1000]) {
        const { raw, t } = await rawPeer({ readBufferBytes });
        const lengths = [10, 70_000, 3];
        raw.write(Buffer.concat(lengths.map((l, n) => makeFrame(n, l))));
        raw.end(makeFrame(3, 5000).subarray(0, cut));
        const sink = growingSink();
        await receiveAll(t, lengths, 9);
        // the receiveInto pending when the connection closes (the frame may be going straight to it)
        const err = await t.receiveInto(sink.sink).catch((e) => e);
        expect(err).toMatchObject({ code: "FRAME_TRUNCATED" });
        expect(err.message).toMatch(cut === 5 ? /5 of 16 bytes/ : new RegExp(`${cut} of ${frameSize(5000, false)}`));
      }
    });

    it(`a reset connection fails pending and later receives with CONNECTION_LOST (${label})`, async () => {
      const { raw, t } = await rawPeer({ readBufferBytes });
      raw.write(makeFrame(0, 100_000).subarray(0, 50_000));
      const sink = growingSink();
      const pending = t.receiveInto(sink.sink);
      await sleep(50);
      raw.resetAndDestroy();
      await expect(pending).rejects.toThrowError(code("CONNECTION_LOST"));
      await expect(t.receive()).rejects.toThrowError(code("CONNECTION_LOST"));
    });
  }

  it("close(): pending receive and receiveInto resolve null, send fails, the peer sees a clean end", async () => {
    const { c, s } = await pair();
    const sink = growingSink();
    const a = s.receive();
    c.send(makeFrame(0, 100_000).subarray(0, 40_000)); // half a frame: s is inside it
    await sleep(50);
    const b = s.receiveInto(sink.sink);
    s.close();
    await expect(a).resolves.toBeNull();
    await expect(b).resolves.toBeNull();
    await expect(s.send(makeFrame(0, 10))).rejects.toThrowError(code("CONNECTION_CLOSED"));
    await expect(c.receive()).resolves.toBeNull();
    c.close();
  });

  it("destroy(): pending receives resolve null at once", async () => {
    const { s } = await pair();
    const sink = growingSink();
    const a = s.receiveInto(sink.sink);
    s.destroy();
    await expect(a).resolves.toBeNull();
    await expect(s.send(makeFrame(0, 10))).rejects.toThrowError(code("CONNECTION_CLOSED"));
  });

  it("a listener still counts an accepted connection that reads into its own buffer (maxConnections)", async () => {
    const l = await TcpListener.listen("127.0.0.1", 0);
    const count = () => new Promise<number>((r) => l.server.getConnections((_, n) => r(n)));
    const [c, s] = await Promise.all([connectTcp("127.0.0.1", l.port), l.accept()]);
    open.push(c, s);
    expect(s.stats.readMode).toBe("buffer");
    expect(s.peer).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(await count()).toBe(1);
    c.close();
    await expect(s.receive()).resolves.toBeNull();
    s.close();
    for (let i = 0; i < 100 && (await count()) > 0; i++) await sleep(10);
    expect(await count()).toBe(0);
    l.close();
  });
});
