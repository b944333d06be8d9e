import { FramePool, type FramePoolStats } from "./frame-pool.js";
import { FrameQueue, type FrameSink, TransportError, type Transport } from "./transport.js";

/** One end of an in-process pair. */
export interface InProcessTransport extends Transport {
  allocFrame(size: number): Uint8Array;
  receiveInto(sink: FrameSink): Promise<number | null>;
  /** Counters of this end's send pool (buffers from allocFrame, given back by the peer's receiveInto). */
  readonly poolStats: FramePoolStats;
}

/**
 * Two connected transports in one process (tests, simulations, demos). A sender waits
 * while the peer holds more than `bufferBytes` unread (default 64 MiB): the same bounded
 * buffering a socket gives. A frame built in `allocFrame` is handed to the peer as it is
 * (no copy); the peer's `receiveInto` copies it out and gives the buffer back to the
 * sender's pool, its `receive` keeps it.
 */
export function createInProcessPair(options: { bufferBytes?: number } = {}): [InProcessTransport, InProcessTransport] {
  const limit = options.bufferBytes ?? 64 << 20;
  const qa = new FrameQueue();
  const qb = new FrameQueue();
  const a = new InProcessEnd(qa, qb, limit);
  const b = new InProcessEnd(qb, qa, limit);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

class InProcessEnd implements InProcessTransport {
  bytesSent = 0;
  bytesReceived = 0;
  peer!: InProcessEnd;
  #closed = false;
  /** Buffers this end sends; at most `limit` are in the peer's queue, plus what the free list keeps. */
  readonly #pool: FramePool;
  constructor(
    readonly inbox: FrameQueue,
    readonly outbox: FrameQueue,
    readonly limit: number,
  ) {
    this.#pool = new FramePool({ maxFreeBytes: Math.min(limit, 64 << 20) + (4 << 20) });
  }

  get poolStats(): FramePoolStats {
    return this.#pool.stats;
  }

  allocFrame(size: number): Uint8Array {
    return this.#pool.acquire(size);
  }

  async send(frame: Uint8Array): Promise<void> {
    if (this.#closed || this.peer.#closed)
      throw new TransportError("CONNECTION_CLOSED", "in-process transport: send after close");
    this.bytesSent += frame.length;
    const pool = this.#pool;
    this.outbox.push(frame, pool.owns(frame) ? () => pool.release(frame) : undefined);
    await this.outbox.whenBelow(this.limit);
  }

  async receive(): Promise<Uint8Array | null> {
    const f = await this.inbox.next();
    if (f) this.bytesReceived += f.length;
    return f;
  }

  async receiveInto(sink: FrameSink): Promise<number | null> {
    const n = await this.inbox.nextInto(sink);
    if (n !== null) this.bytesReceived += n;
    return n;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.inbox.end();
    this.outbox.end();
  }
}
