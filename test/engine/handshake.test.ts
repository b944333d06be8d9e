// The handshake's guarantees: keys must match, a recorded HELLO cannot be replayed to a
// new destination (it is bound to that connection's challenge), a destination's refusal
// reaches the source with its reason, and a silent peer times out instead of hanging.
import { describe, expect, it } from "vitest";
import { createKernel } from "../../src/index.js";
import { MigrationDestination } from "../../src/engine/destination.js";
import { MigrationAbortedError, MigrationSource } from "../../src/engine/source.js";
import { MigrationTimeoutError } from "../../src/engine/ownership.js";
import { WasmGuestMemory } from "../../src/memory/wasm-guest-memory.js";
import { createInProcessPair } from "../../src/transport/in-process.js";
import type { Transport } from "../../src/transport/transport.js";
import { FrameType } from "../../src/wire/frame.js";
import { frameKey } from "../../src/wire/hmac.js";

const key = (s: string) => frameKey(new TextEncoder().encode(s));

/** Records every frame sent through `t`. */
function recording(t: Transport, into: Uint8Array[]): Transport {
  return {
    get bytesSent() {
      return t.bytesSent;
    },
    get bytesReceived() {
      return t.bytesReceived;
    },
    send: (f) => (into.push(f.slice()), t.send(f)),
    receive: () => t.receive(),
    close: () => t.close(),
  };
}

describe("handshake", () => {
  it("a wrong key fails the handshake on both sides", async () => {
    const k = await createKernel();
    const [ta, tb] = createInProcessPair();
    const source = new MigrationSource({
      kernel: k,
      memory: new WasmGuestMemory(k, 64),
      transport: ta,
      mode: "stop-and-copy",
      key: key("key-one-key-one-key-one"),
    });
    const destination = new MigrationDestination({
      kernel: k,
      memory: new WasmGuestMemory(k, 64),
      transport: tb,
      key: key("key-two-key-two-key-two"),
    });
    const [s, d] = await Promise.allSettled([source.migrate(), destination.receive()]);
    expect(s.status).toBe("rejected");
    expect(d.status).toBe("rejected");
    expect((d as PromiseRejectedResult).reason.code).toBe("FRAME_HMAC");
  });

  it("a keyed HELLO recorded from one session does not verify at a new destination", async () => {
    const k = await createKernel();
    const shared = key("the-shared-key-of-both-sides");
    const sent: Uint8Array[] = [];
    const [ta, tb] = createInProcessPair();
    const source = new MigrationSource({
      kernel: k,
      memory: new WasmGuestMemory(k, 16),
      transport: recording(ta, sent),
      mode: "stop-and-copy",
      key: shared,
    });
    const first = new MigrationDestination({
      kernel: k,
      memory: new WasmGuestMemory(k, 16),
      transport: tb,
      key: shared,
    });
    await Promise.all([source.migrate(), first.receive()]);
    const hello = sent.find((f) => f[5] === FrameType.HELLO)!;
    expect(hello).toBeDefined();
    // the attacker connects to a fresh destination and replays the recorded HELLO
    const [attacker, victim] = createInProcessPair();
    const fresh = new MigrationDestination({
      kernel: k,
      memory: new WasmGuestMemory(k, 16),
      transport: victim,
      key: shared,
      timeouts: { handshake: 2 },
    });
    const received = fresh.receive();
    await attacker.receive(); // the fresh challenge
    await attacker.send(hello);
    const err = await received.catch((e) => e);
    expect(err.code).toBe("FRAME_HMAC");
    expect(fresh.state).toBe("discarded");
  });

  it("the destination's reason for refusing reaches the source", async () => {
    const k = await createKernel();
    const [ta, tb] = createInProcessPair();
    const source = new MigrationSource({
      kernel: k,
      memory: new WasmGuestMemory(k, 64),
      transport: ta,
      mode: "stop-and-copy",
    });
    const destination = new MigrationDestination({ kernel: k, memory: new WasmGuestMemory(k, 32), transport: tb });
    const [s, d] = await Promise.allSettled([source.migrate(), destination.receive()]);
    expect((d as PromiseRejectedResult).reason.code).toBe("PROTOCOL_MISMATCH");
    const err = (s as PromiseRejectedResult).reason as MigrationAbortedError;
    expect(err).toBeInstanceOf(MigrationAbortedError);
    expect(err.message).toMatch(/PROTOCOL_MISMATCH: the peer aborted: source memory has 64 pages, destination 32/);
  });

  it("a destination that never answers times out the source's handshake; the guest keeps running", async () => {
    const k = await createKernel();
    const [ta] = createInProcessPair();
    let resumed = 0;
    const source = new MigrationSource({
      kernel: k,
      memory: new WasmGuestMemory(k, 16),
      transport: ta,
      mode: "stop-and-copy",
      timeouts: { handshake: 0.2 },
      onResume: () => void resumed++,
    });
    const err = await source.migrate().catch((e) => e);
    expect(err).toBeInstanceOf(MigrationAbortedError);
    expect(err.cause).toBeInstanceOf(MigrationTimeoutError);
    expect(err.cause.code).toBe("TIMEOUT_HANDSHAKE");
    expect(source.state).toBe("aborted");
    expect(resumed).toBe(0); // never paused
  });

  it("a source that stalls after the pause times out the destination, which discards; the paused source resumes on its own timeout", async () => {
    const k = await createKernel();
    const [ta, tb] = createInProcessPair();
    let resumed = 0;
    let discarded = 0;
    const dst = Object.assign(new WasmGuestMemory(k, 16), { discard: async () => void discarded++ });
    const source = new MigrationSource({
      kernel: k,
      memory: new WasmGuestMemory(k, 16),
      transport: ta,
      mode: "stop-and-copy",
      timeouts: { commit: 0.3, frame: 0.3 },
      onResume: () => void resumed++,
      deviceState: () => new Promise((resolve) => setTimeout(() => resolve(new Uint8Array(1)), 1000)), // stuck while paused
    });
    const destination = new MigrationDestination({ kernel: k, memory: dst, transport: tb, timeouts: { frame: 0.3 } });
    const [s, d] = await Promise.allSettled([source.migrate(), destination.receive()]);
    expect((d as PromiseRejectedResult).reason.code).toBe("TIMEOUT_RECEIVING");
    expect(discarded).toBe(1);
    expect(s.status).toBe("rejected");
    expect(resumed).toBe(1);
  });
});
