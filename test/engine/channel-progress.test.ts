// Live progress with data channels: the channel Workers report while a round runs, so the
// source's progress moves during a round, not only at its end; a cancel in the middle of
// a channel round aborts it (CANCELLED) and the source runs on.
import { MessageChannel } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { createKernel } from "../../src/index.js";
import { MigrationDestination } from "../../src/engine/destination.js";
import type { MigrationProgress } from "../../src/engine/migration-events.js";
import { MigrationSource } from "../../src/engine/source.js";
import { WasmGuestMemory } from "../../src/memory/wasm-guest-memory.js";
import { createInProcessPair } from "../../src/transport/in-process.js";
import type { MessagePortLike } from "../../src/transport/message-port.js";
import { seededRandom } from "../../src/util/random.js";

const PAGES = 8192; // 32 MiB at 64 MB/s: round 0 lasts ~0.5 s

async function setup(signal?: AbortSignal) {
  const ks = await createKernel({ shared: true });
  const kd = await createKernel({ shared: true });
  const src = new WasmGuestMemory(ks, PAGES, { shared: true });
  const dst = new WasmGuestMemory(kd, PAGES, { shared: true });
  const b = src.bytes();
  const rnd = seededRandom(5);
  for (let i = 0; i < b.length; i += 4) new DataView(b.buffer, b.byteOffset + i, 4).setUint32(0, rnd() * 2 ** 32);
  const pairs = [new MessageChannel(), new MessageChannel()];
  const [a, c] = createInProcessPair();
  let resumed = false;
  const source = new MigrationSource({
    kernel: ks,
    memory: src,
    dirtyLog: src.dirtyLog(),
    transport: a,
    mode: "precopy",
    maxRounds: 2,
    maxBandwidth: 64e6,
    progressIntervalMs: 20,
    channels: { ports: pairs.map((p) => p.port1) as unknown as MessagePortLike[] },
    onResume: () => void (resumed = true),
  });
  const destination = new MigrationDestination({
    kernel: kd,
    memory: dst,
    transport: c,
    channels: { ports: pairs.map((p) => p.port2) as unknown as MessagePortLike[] },
  });
  const run = () => Promise.allSettled([source.migrate({ signal }), destination.receive()]);
  const dispose = () => {
    src.dispose();
    dst.dispose();
  };
  return { source, destination, run, dispose, resumed: () => resumed };
}

describe("progress with data channels", () => {
  it("moves during a round, from the channels' reports", async () => {
    const s = await setup();
    const during: MigrationProgress[] = [];
    let firstRoundEnded = false;
    s.source.on("round-end", () => (firstRoundEnded = true));
    s.source.on("progress", (e) => {
      if (!firstRoundEnded && e.progress.phase === "precopy") during.push(e.progress);
    });
    const [rs, rd] = await s.run();
    s.dispose();
    if (rs.status === "rejected") throw rs.reason;
    if (rd.status === "rejected") throw rd.reason;
    expect(rs.value.channels).toBe(2);
    const r0 = rs.value.rounds[0];
    // several snapshots inside round 0, with bytes and pages growing before its end
    const moving = during.filter((p) => p.transferred > 0 && p.transferred < r0.bytes);
    expect(moving.length).toBeGreaterThan(2);
    expect(moving.at(-1)!.remaining).toBeLessThan(moving[0].remaining);
  });

  it("a cancel in the middle of a channel round aborts: CANCELLED, the source runs", async () => {
    const ctl = new AbortController();
    const s = await setup(ctl.signal);
    s.source.on("progress", (e) => e.progress.transferred > 4 << 20 && ctl.abort());
    const t0 = performance.now();
    const [rs, rd] = await s.run();
    s.dispose();
    expect(rs.status).toBe("rejected");
    const err = (rs as PromiseRejectedResult).reason;
    expect(err.cause.code).toBe("CANCELLED");
    expect(s.source.state).toBe("aborted");
    expect(s.source.report.rounds.length).toBe(0); // round 0 never finished
    expect(rd.status).toBe("rejected");
    expect(s.destination.state).toBe("discarded");
    // not a wait for the round to finish at 64 MB/s (~0.5 s) plus a second round
    expect(performance.now() - t0).toBeLessThan(5000);
  });
});
