// Channel on the pooled data path: sendInPlace copies a sealed frame out of kernel memory
// into the transport's buffer, receive lets the transport write into its kernel arena.
import { afterEach, describe, expect, it } from "vitest";
import { Channel } from "../../src/engine/channel.js";
import { createKernel, type Kernel } from "../../src/index.js";
import { createInProcessPair } from "../../src/transport/in-process.js";
import { TokenBucket } from "../../src/transport/rate-limit.js";
import { connectTcp, TcpListener, type TcpTransport } from "../../src/transport/tcp.js";
import type { Transport } from "../../src/transport/transport.js";
import { FRAME_HEADER_BYTES, FRAME_TRAILER_ROOM, frameChecksum, FrameType, FrameWriter } from "../../src/wire/frame.js";
import { rng } from "../support/random.js";

const MiB = 1 << 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const open: Array<{ close(): void }> = [];
afterEach(() => {
  for (const t of open.splice(0)) t.close();
});

async function tcpPair(): Promise<[TcpTransport, TcpTransport]> {
  const l = await TcpListener.listen("127.0.0.1", 0);
  const [c, s] = await Promise.all([connectTcp("127.0.0.1", l.port), l.accept()]);
  l.close();
  open.push(c, s);
  return [c, s];
}

/** A frame buffer in kernel memory (payload at byte 16), filled from `seed`. */
function kernelFrame(k: Kernel, length: number, seed: number) {
  const region = k.alloc(FRAME_HEADER_BYTES + length + FRAME_TRAILER_ROOM, 64);
  const r = rng(seed);
  const payload = () => k.bytes(region).subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length);
  const p = payload();
  for (let i = 0; i < length; i += 4) p[i] = (r() * 256) | 0;
  return { buffer: () => k.bytes(region), payload, copy: p.slice() };
}

/** Only send/receive: Channel's plain path (a wrapper that forwards nothing more). */
function plain(t: Transport): Transport {
  return {
    get bytesSent() {
      return t.bytesSent;
    },
    get bytesReceived() {
      return t.bytesReceived;
    },
    send: (f) => t.send(f),
    receive: () => t.receive(),
    close: () => t.close(),
  };
}

describe("Channel on pooled transports", () => {
  for (const kind of ["tcp", "in-process", "plain wrapper"] as const) {
    it(`${kind}: 1 MiB PAGES frames from kernel memory arrive verified, one transport buffer per frame in flight`, async () => {
      const [ka, kb] = await Promise.all([createKernel(), createKernel()]);
      const [ta, tb] = kind === "tcp" ? await tcpPair() : createInProcessPair({ bufferBytes: 4 * MiB });
      const tx = new Channel(ka, kind === "plain wrapper" ? plain(ta) : ta, null);
      const rx = new Channel(kb, kind === "plain wrapper" ? plain(tb) : tb, null);
      const frames = [kernelFrame(ka, MiB, 1), kernelFrame(ka, MiB - 777, 2)];
      const count = 64;
      const reader = (async () => {
        for (let n = 0; n < count; n++) {
          const f = await rx.receive();
          expect(f?.type).toBe(FrameType.PAGES);
          expect(kb.owns(f!.payload)).toBe(true); // in the arena: decoders run on it in place
          expect(Buffer.compare(f!.payload, frames[n % 2].copy)).toBe(0);
        }
      })();
      for (let n = 0; n < count; n++) {
        const fr = frames[n % 2];
        await tx.sendInPlace(FrameType.PAGES, fr.buffer(), fr.copy.length);
      }
      await reader;
      if (kind === "tcp") {
        const [c, s] = [ta as TcpTransport, tb as TcpTransport];
        expect(c.stats.send.allocations).toBeLessThanOrEqual(20);
        expect(c.stats.send.reuses).toBeGreaterThanOrEqual(count - 20);
        expect(s.stats.direct).toBeGreaterThan(count / 2);
      }
      if (kind === "in-process") {
        const s = (ta as ReturnType<typeof createInProcessPair>[0]).poolStats;
        expect(s.allocations).toBeLessThanOrEqual(6);
        expect(s.releases).toBe(count);
      }
      tx.dispose();
      rx.dispose();
    });
  }

  for (const kind of ["tcp", "in-process"] as const) {
    it(`${kind}: sendInPlace copies before it awaits (rate limit): the caller may overwrite its buffer at once`, async () => {
      const k = await createKernel();
      const [ta, tb] = kind === "tcp" ? await tcpPair() : createInProcessPair();
      const limiter = new TokenBucket(20 * MiB, { burstSeconds: 0.01 });
      const tx = new Channel(k, ta, null, { limiter });
      const rx = new Channel(k, tb, null);
      const fr = kernelFrame(k, 512 << 10, 3);
      const reader = (async () => {
        for (let n = 0; n < 6; n++) {
          const f = await rx.receive();
          expect(Buffer.compare(f!.payload, new Uint8Array(fr.copy.length).fill(n + 1))).toBe(0);
        }
      })();
      for (let n = 0; n < 6; n++) {
        fr.payload().fill(n + 1);
        const sent = tx.sendInPlace(FrameType.PAGES, fr.buffer(), fr.copy.length);
        fr.payload().fill(0xff); // overwritten at once, while the frame waits for rate-limit budget
        await sent;
      }
      await reader;
      rx.dispose();
    });
  }

  it("dispose() while a receive waits keeps the arena until that receive settles; the frame that arrives is intact", async () => {
    const [ka, kb] = await Promise.all([createKernel(), createKernel()]);
    const [c, s] = await tcpPair();
    const rx = new Channel(kb, s, null);
    const w = new FrameWriter(frameChecksum(ka));
    const payload = kernelFrame(ka, MiB, 4).copy;
    const base = kb.allocatedBytes;
    await c.send(w.seal(FrameType.PAGES, payload));
    await rx.receive(); // the arena exists now
    const withArena = kb.allocatedBytes;
    expect(withArena).toBeGreaterThan(base);

    // the next frame starts while a receive waits: it goes straight into the arena; half
    // of it is there when the channel is disposed
    const second = w.seal(FrameType.PAGES, payload);
    const direct = s.stats.direct;
    const pending = rx.receive();
    await c.send(second.slice(0, 300_000));
    await sleep(50);
    rx.dispose();
    expect(kb.allocatedBytes).toBe(withArena); // still being written into: not freed
    kb.alloc(64 << 20); // kernel memory may grow meanwhile: the transport asks for a fresh view
    await c.send(second.slice(300_000));
    const f = await pending;
    expect(Buffer.compare(f!.payload, payload)).toBe(0);
    expect(s.stats.direct).toBe(direct + 1);

    // the stream ends: the last receive settles without a frame and the arena is freed
    const last = rx.receive();
    c.close();
    await expect(last).resolves.toBeNull();
    expect(kb.allocatedBytes).toBe(base + (64 << 20));
  });

  it("a receive that times out inside a frame closes the transport, which writes no more into the arena", async () => {
    const k = await createKernel();
    const [c, s] = await tcpPair();
    const rx = new Channel(k, s, null);
    const frame = new Uint8Array(FRAME_HEADER_BYTES + 4 + 200_000);
    new DataView(frame.buffer).setUint32(0, 0x46574750, true);
    frame[4] = 2;
    new DataView(frame.buffer).setUint32(12, 200_000, true);
    await c.send(frame.slice(0, 100_000));
    await expect(rx.receive({ seconds: 0.2, stage: "receiving" })).rejects.toMatchObject({
      code: "TIMEOUT_RECEIVING",
    });
    const base = k.allocatedBytes;
    rx.dispose();
    expect(k.allocatedBytes).toBeLessThan(base); // nothing pending: freed at once
    await c.send(frame.slice(100_000)).catch(() => {});
    await sleep(50);
    expect(s.stats.direct).toBe(0);
  });
});

describe("TokenBucket", () => {
  it("a new rate applies at once to a take() that sleeps (lifting the limit wakes it)", async () => {
    const b = new TokenBucket(1e6); // 1 MB/s
    const t0 = performance.now();
    const p = b.take(2e6); // 2 s at this rate
    setTimeout(() => b.setRate(Infinity), 50);
    await p;
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});
