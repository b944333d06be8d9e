import { FrameQueue, TransportError, type Transport } from "./transport.js";

/**
 * Two connected transports in one process (tests, simulations, demos). A sender waits
 * while the peer holds more than `bufferBytes` unread (default 64 MiB): the same bounded
 * buffering a socket gives.
 */
export function createInProcessPair(options: { bufferBytes?: number } = {}): [Transport, Transport] {
  const limit = options.bufferBytes ?? 64 << 20;
  const qa = new FrameQueue();
  const qb = new FrameQueue();
  const a = new InProcessEnd(qa, qb, limit);
  const b = new InProcessEnd(qb, qa, limit);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

class InProcessEnd implements Transport {
  bytesSent = 0;
  bytesReceived = 0;
  peer!: InProcessEnd;
  #closed = false;
  constructor(
    readonly inbox: FrameQueue,
    readonly outbox: FrameQueue,
    readonly limit: number,
  ) {}

  async send(frame: Uint8Array): Promise<void> {
    if (this.#closed || this.peer.#closed)
      throw new TransportError("CONNECTION_CLOSED", "in-process transport: send after close");
    this.bytesSent += frame.length;
    this.outbox.push(frame);
    await this.outbox.whenBelow(this.limit);
  }

  async receive(): Promise<Uint8Array | null> {
    const f = await this.inbox.next();
    if (f) this.bytesReceived += f.length;
    return f;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.inbox.end();
    this.outbox.end();
  }
}
