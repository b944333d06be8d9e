// A network link in virtual time, wrapped around a transport pair (createInProcessPair).
//
//   send(frame):  wait for CPU time owed (charged by the simulator), then
//                 serialize: the link is busy for bytes / bandwidth after the frames
//                 queued before it; send resolves once at most `sendBufferBytes` are
//                 still waiting for the wire (a socket's send buffer)
//                 deliver:   at serialized + latency (+ jitter), never before the
//                 previous frame (a link keeps order)
//   close():      after the last delivery
//
// Jitter is drawn from a seeded PRNG, so a run stays repeatable.
import { seededRandom } from "../util/random.js";
import type { Transport } from "../transport/transport.js";
import type { VirtualClock } from "./virtual-clock.js";

export interface LinkOptions {
  /** Bytes per second each way (Infinity: no limit). */
  bandwidth: number;
  /** One-way latency, seconds (default 0). */
  latency?: number;
  /** Maximum extra one-way delay per frame, seconds, uniform in [0, jitter] (default 0). */
  jitter?: number;
  /** Seed of the jitter PRNG. */
  seed?: number;
  /** Bytes that may wait for the wire before send() blocks (default 1 MiB, a TCP send buffer). */
  sendBufferBytes?: number;
  /** Charge the wall time spent between two sends as CPU time (measured mode; not repeatable). */
  measureCpu?: boolean;
}

/** One direction's sender-side state, plus the samples of bytes on the wire over time. */
export class LinkEnd implements Transport {
  bytesSent = 0;
  /** CPU seconds owed before the next frame can go (added by the simulator). */
  cpuDebt = 0;
  /** Wall seconds charged as CPU time so far (measured mode). */
  measuredCpuSeconds = 0;
  #lastReturn = -1;
  /** (virtual seconds, cumulative bytes delivered) after each frame. */
  readonly timeline: Array<[number, number]> = [];
  #freeAt = 0;
  #lastDelivery = 0;
  #delivered = 0;
  #closing = false;
  readonly #rng: () => number;

  constructor(
    readonly inner: Transport,
    readonly clock: VirtualClock,
    readonly options: LinkOptions,
  ) {
    this.#rng = seededRandom(options.seed ?? 1);
  }

  get bytesReceived(): number {
    return this.inner.bytesReceived;
  }

  async send(frame: Uint8Array): Promise<void> {
    if (this.options.measureCpu && this.#lastReturn >= 0) {
      const wall = (performance.now() - this.#lastReturn) / 1000;
      this.measuredCpuSeconds += wall;
      this.cpuDebt += wall;
    }
    try {
      await this.#send(frame);
    } finally {
      if (this.options.measureCpu) this.#lastReturn = performance.now();
    }
  }

  async #send(frame: Uint8Array): Promise<void> {
    const c = this.clock;
    if (this.cpuDebt > 0) {
      const d = this.cpuDebt;
      this.cpuDebt = 0;
      await c.sleep(d);
    }
    const o = this.options;
    const start = Math.max(c.now(), this.#freeAt);
    const serialized = start + (Number.isFinite(o.bandwidth) ? frame.length / o.bandwidth : 0);
    this.#freeAt = serialized;
    this.bytesSent += frame.length;
    const arrive = Math.max(
      this.#lastDelivery,
      serialized + (o.latency ?? 0) + (o.jitter ? this.#rng() * o.jitter : 0),
    );
    this.#lastDelivery = arrive;
    const len = frame.length;
    c.at(arrive, () => {
      this.#delivered += len;
      this.timeline.push([arrive, this.#delivered]);
      this.inner.send(frame).catch(() => {}); // the peer may have closed: its loss, as on a socket
    });
    // block while more than the send buffer waits for the wire
    const bufferSeconds = Number.isFinite(o.bandwidth) ? (o.sendBufferBytes ?? 1 << 20) / o.bandwidth : 0;
    const until = serialized - bufferSeconds;
    if (until > c.now()) await c.sleep(until - c.now());
  }

  receive(): Promise<Uint8Array | null> {
    return this.inner.receive();
  }

  close(): void {
    if (this.#closing) return;
    this.#closing = true;
    this.clock.at(this.#lastDelivery, () => this.inner.close());
  }
}

/** Wraps both ends of a connected pair in a link with the same parameters each way. */
export function createLink(
  pair: [Transport, Transport],
  clock: VirtualClock,
  options: LinkOptions,
): [LinkEnd, LinkEnd] {
  return [
    new LinkEnd(pair[0], clock, options),
    new LinkEnd(pair[1], clock, { ...options, seed: (options.seed ?? 1) + 1 }),
  ];
}
