// Data channels across processes over TCP: the destination runs in a child process
// (test/support/engine-receiver.mjs, the build) and accepts up to 4 channels, each a TCP
// connection of its own; the source runs here with a Worker guest writing throughout. The
// child prints the hash of the memory it received, which must equal the source's at the pause.
import { fileURLToPath } from "node:url";
import { describe, expect, it, onTestFinished } from "vitest";
import { createKernel, hashBytes128 } from "../../src/index.js";
import { MigrationDestination } from "../../src/engine/destination.js";
import { MigrationAbortedError, MigrationSource, type MigrationMode } from "../../src/engine/source.js";
import { WasmGuestMemory } from "../../src/memory/wasm-guest-memory.js";
import { connectTcp, TcpListener } from "../../src/transport/tcp.js";
import { seededRandom } from "../../src/util/random.js";
import { startListeningProcess } from "../support/listening-process.js";
import { checkOutcome, OwnershipLog } from "../support/ownership.js";
import { TcpProxy } from "../support/tcp-proxy.js";
import { startWorkerGuest } from "../support/worker-guest.js";

const RECEIVER = fileURLToPath(new URL("../support/engine-receiver.mjs", import.meta.url));
const PAGES = 4096;

async function startReceiver(channels: number) {
  const peer = await startListeningProcess<Record<string, unknown>>(RECEIVER, [
    "--channels",
    String(channels),
    "--hash",
  ]);
  onTestFinished(() => void peer.child.kill());
  return peer;
}

function hex(h: { low: bigint; high: bigint }): string {
  return h.high.toString(16).padStart(16, "0") + h.low.toString(16).padStart(16, "0");
}

describe("data channels over TCP, destination in another process", () => {
  for (const mode of ["precopy", "hybrid", "postcopy", "stop-and-copy", "auto"] as const satisfies MigrationMode[]) {
    for (const channels of [1, 2, 4]) {
      it(`${mode} with ${channels} channel(s)`, async () => {
        const k = await createKernel({ shared: true });
        const src = new WasmGuestMemory(k, PAGES, { shared: true });
        const rnd = seededRandom(channels * 10 + mode.length);
        const b = src.bytes();
        for (let i = 0; i < b.length; i += 8) if (rnd() < 0.7) b[i] = rnd() * 256;
        const peer = await startReceiver(channels);
        const guest = startWorkerGuest(src, { hotPages: PAGES, seed: channels, startWrites: 500 });
        onTestFinished(async () => void (await guest.terminate()));
        await guest.running;
        let atPause = "";
        const source = new MigrationSource({
          kernel: k,
          memory: src,
          dirtyLog: mode === "stop-and-copy" ? undefined : src.dirtyLog(),
          transport: await connectTcp("127.0.0.1", peer.port),
          mode,
          maxRounds: 4,
          channels: { count: channels, tcp: { host: "127.0.0.1" } },
          onPause: () => {
            guest.pause();
            atPause = hex(hashBytes128(k, src.bytes()));
          },
        });
        const report = await source.migrate();
        const rx = await peer.result;
        expect(report.status).toBe("completed");
        expect(report.channels).toBe(report.mode === "postcopy" ? 0 : channels); // post-copy: no rounds, no channels
        expect(rx.ok).toBe(true);
        expect(rx.memoryHash).toBe(atPause);
        src.dispose();
      }, 60_000);
    }
  }
});

describe("a data channel's TCP connection cut mid-migration", () => {
  // the destination advertises a proxy per channel; channel 1's proxy destroys its
  // connection after `bytes` from the source: before the decision, so the source aborts and
  // runs, the destination discards, and nothing else happens
  for (const bytes of [1, 1 << 20, 5 << 20]) {
    it(`cut after ${bytes} bytes on channel 1: source runs with its memory intact, destination discarded`, async () => {
      const k = await createKernel({ shared: true });
      const kd = await createKernel({ shared: true });
      const src = new WasmGuestMemory(k, PAGES, { shared: true });
      const b = src.bytes();
      const rnd = seededRandom(bytes + 1);
      for (let i = 0; i < b.length; i += 4) b[i] = rnd() * 256;
      const before = hex(hashBytes128(k, b));
      const log = new OwnershipLog();
      const proxies: TcpProxy[] = [];
      onTestFinished(async () => void (await Promise.all(proxies.map((p) => p.close()))));
      const listener = await TcpListener.listen("127.0.0.1", 0);
      onTestFinished(() => listener.close());
      const accepted = listener.accept();
      const cut: Promise<unknown>[] = [];
      const source = new MigrationSource({
        kernel: k,
        memory: src,
        dirtyLog: src.dirtyLog(),
        transport: await connectTcp("127.0.0.1", listener.port),
        mode: "precopy",
        maxRounds: 3,
        channels: { count: 2, tcp: { host: "127.0.0.1" } },
        onPause: log.pause,
        onResume: log.resume,
      });
      const destination = new MigrationDestination({
        kernel: kd,
        transport: await accepted,
        memory: (pages) =>
          Object.assign(new WasmGuestMemory(kd, pages, { shared: true }), { discard: log.discard, commit: log.commit }),
        channels: {
          count: 2,
          tcp: {
            host: "127.0.0.1",
            advertise: async (port, channel) => {
              const proxy = await TcpProxy.start(port);
              proxies.push(proxy);
              if (channel === 1) cut.push(proxy.cutAfter(bytes));
              return proxy.port;
            },
          },
        },
        onActivate: log.activate,
        timeouts: { frame: 10, handshake: 10 },
      });
      const [rs, rd] = await Promise.allSettled([source.migrate(), destination.receive()]);
      expect(cut.length).toBe(1);
      await cut[0]; // the cut struck
      expect(rs.status).toBe("rejected");
      expect((rs as PromiseRejectedResult).reason).toBeInstanceOf(MigrationAbortedError);
      expect(rd.status).toBe("rejected");
      expect(destination.state).toBe("discarded");
      const outcome = checkOutcome(log, {
        sourceIntact: hex(hashBytes128(k, src.bytes())) === before,
        destinationHasNewest: false,
      });
      expect(outcome).toBe("a");
      expect(log.destinationDiscarded).toBe(true);
      src.dispose();
    }, 60_000);
  }
});
