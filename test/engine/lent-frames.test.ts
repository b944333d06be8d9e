// Page frames leave from the source's kernel memory without a copy when the transport
// borrows them (Transport.sendBorrowed): the sender must leave a lent buffer untouched
// until the transport gives it back. A transport that reads each lent frame only later
// (a macrotask after the send) would carry a reused buffer's new bytes, which the
// destination's frame checksum refuses; the control test shows it does.
import { describe, expect, it } from "vitest";
import { createKernel, MigrationDestination, MigrationSource, PAGE_SIZE, WasmGuestMemory } from "../../src/index.js";
import { createInProcessPair } from "../../src/transport/in-process.js";
import type { Transport } from "../../src/transport/transport.js";
import { randInt, rng } from "../support/random.js";

interface LendStats {
  lent: number;
  released: number;
  /** Most frames lent and not yet released at one time. */
  maxOutstanding: number;
  /** Distinct buffers (by address) the frames were lent from. */
  buffers: Set<number>;
}

/** `inner` with a sendBorrowed that copies the frame only after `delayMs`, then releases it. */
function lateReader(inner: Transport, delayMs: number, tamper = false): { transport: Transport; stats: LendStats } {
  const stats: LendStats = { lent: 0, released: 0, maxOutstanding: 0, buffers: new Set() };
  let tail: Promise<void> = Promise.resolve();
  const transport: Transport = {
    send(frame) {
      tail = tail.then(() => inner.send(frame)); // in order with the lent frames
      tail.catch(() => {});
      return Promise.resolve();
    },
    receive: () => inner.receive(),
    close: () => inner.close(),
    get bytesSent() {
      return inner.bytesSent;
    },
    get bytesReceived() {
      return inner.bytesReceived;
    },
    sendBorrowed(frame, release) {
      stats.lent++;
      stats.buffers.add(frame.byteOffset);
      stats.maxOutstanding = Math.max(stats.maxOutstanding, stats.lent - stats.released);
      // a sender that reused the buffer at once would change it like this before the read
      if (tamper && stats.lent === 3) frame[frame.length >> 1] ^= 0xff;
      // queued at once (as TCP does while its buffer has room); read and released later, in order
      const read = (tail = tail.then(
        () =>
          new Promise<void>((resolve) =>
            setTimeout(() => {
              const copy = frame.slice();
              stats.released++;
              release();
              resolve(inner.send(copy));
            }, delayMs),
          ),
      ));
      read.catch(() => {});
      return Promise.resolve();
    },
  };
  return { transport, stats };
}

async function migrateThrough(delayMs: number, tamper: boolean) {
  const pages = 8192; // 32 MiB, ~21 MiB of it raw pages: ~15 frames (two batches of 256 pages each)
  const ks = await createKernel({ shared: true });
  const kd = await createKernel();
  const src = new WasmGuestMemory(ks, pages, { shared: true });
  const bytes = src.bytes();
  const r = rng(5);
  // incompressible pages (raw records fill the frames), every third one zero
  for (let p = 0; p < pages; p++)
    if (p % 3) for (let i = 0; i < PAGE_SIZE; i++) bytes[p * PAGE_SIZE + i] = randInt(r, 256);
  let dst = null as WasmGuestMemory | null;
  const [a, b] = createInProcessPair();
  const { transport, stats } = lateReader(a, delayMs, tamper);
  const destination = new MigrationDestination({
    kernel: kd,
    transport: b,
    memory: (n) => (dst = new WasmGuestMemory(kd, n)),
  }).receive();
  const source = new MigrationSource({
    kernel: ks,
    memory: src,
    dirtyLog: src.dirtyLog(),
    transport,
    mode: "precopy",
    codecs: { lz: false },
  });
  const [s, d] = await Promise.allSettled([source.migrate(), destination]);
  return { s, d, stats, same: dst !== null && Buffer.compare(dst.bytes(), src.bytes()) === 0 };
}

describe("page frames lent to the transport", () => {
  it("a transport that reads each frame a few ms late still carries every frame intact", async () => {
    const { s, d, stats, same } = await migrateThrough(3, false);
    if (s.status === "rejected") throw s.reason;
    if (d.status === "rejected") throw d.reason;
    expect(d.status).toBe("fulfilled");
    expect(same).toBe(true);
    expect(stats.lent).toBeGreaterThanOrEqual(12); // the page frames went out lent
    expect(stats.released).toBe(stats.lent);
    expect(stats.maxOutstanding).toBeGreaterThan(4); // many frames out at once
    expect(stats.maxOutstanding).toBeLessThanOrEqual(8); // but a bounded number of buffers
    // frame buffers are reused, not made per frame: the one being filled and at most 8 lent
    expect(stats.buffers.size).toBeLessThanOrEqual(9);
    expect(stats.lent).toBeGreaterThan(stats.buffers.size);
  });

  it("control: a lent frame changed before the transport reads it is refused by the destination", async () => {
    const { s, d } = await migrateThrough(3, true);
    expect(s.status).toBe("rejected");
    expect(d.status).toBe("rejected");
    expect(String((d as PromiseRejectedResult).reason?.message)).toMatch(/checksum/);
  });
});
