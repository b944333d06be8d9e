// Data channels across processes over TCP: the destination runs in a child process
// (test/support/engine-receiver.mjs, the build) and accepts up to 4 channels, each a TCP
// connection of its own; the source runs here with a Worker guest writing throughout. The
// child prints the hash of the memory it received, which must equal the source's at the pause.
import { fileURLToPath } from "node:url";
import { describe, expect, it, onTestFinished } from "vitest";
import { createKernel, hashBytes128 } from "../../src/index.js";
import { MigrationSource, type MigrationMode } from "../../src/engine/source.js";
import { WasmGuestMemory } from "../../src/memory/wasm-guest-memory.js";
import { connectTcp } from "../../src/transport/tcp.js";
import { seededRandom } from "../../src/util/random.js";
import { startListeningProcess } from "../support/listening-process.js";
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
        if (mode !== "postcopy") expect(report.channels).toBe(channels);
        expect(rx.ok).toBe(true);
        expect(rx.memoryHash).toBe(atPause);
        src.dispose();
      }, 60_000);
    }
  }
});
