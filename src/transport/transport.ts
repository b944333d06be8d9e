import { PagewireError } from "../errors.js";

/**
 * A bidirectional, ordered, reliable carrier of whole frames (see frame.ts). The engine
 * speaks only this interface; the in-process pair, TCP (optionally TLS) and MessagePort
 * implement it.
 */
export interface Transport {
  /** Queues one frame. Resolves once the transport can take more (backpressure). Ownership of `frame` passes to the transport. */
  send(frame: Uint8Array): Promise<void>;
  /** The next frame, or null once the peer closed cleanly. Rejects with a TransportError or FrameError. */
  receive(): Promise<Uint8Array | null>;
  /** Closes both directions; pending receives resolve null. */
  close(): void;
  /** Frame bytes sent and received so far. */
  readonly bytesSent: number;
  readonly bytesReceived: number;
}

/** The carrier failed (connection lost, peer gone). */
export class TransportError extends PagewireError {}

/** Receive side of a transport: frames queued until asked for, then errors or end. */
export class FrameQueue {
  #frames: Uint8Array[] = [];
  #waiters: Array<{ resolve: (f: Uint8Array | null) => void; reject: (e: unknown) => void }> = [];
  #error: unknown = null;
  #ended = false;
  #bytes = 0;
  #drainWaiters: Array<() => void> = [];

  /** Bytes queued and not yet received. */
  get queuedBytes(): number {
    return this.#bytes;
  }

  push(frame: Uint8Array): void {
    if (this.#ended || this.#error) return;
    const w = this.#waiters.shift();
    if (w) w.resolve(frame);
    else {
      this.#frames.push(frame);
      this.#bytes += frame.length;
    }
  }

  fail(error: unknown): void {
    if (this.#ended || this.#error) return;
    this.#error = error;
    for (const w of this.#waiters.splice(0)) w.reject(error);
    this.#wakeDrain();
  }

  end(): void {
    if (this.#ended || this.#error) return;
    this.#ended = true;
    for (const w of this.#waiters.splice(0)) w.resolve(null);
    this.#wakeDrain();
  }

  next(): Promise<Uint8Array | null> {
    const f = this.#frames.shift();
    if (f) {
      this.#bytes -= f.length;
      this.#wakeDrain();
      return Promise.resolve(f);
    }
    if (this.#error) return Promise.reject(this.#error);
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Resolves when fewer than `bytes` are queued (or the queue ended). */
  whenBelow(bytes: number): Promise<void> {
    if (this.#bytes < bytes || this.#ended || this.#error) return Promise.resolve();
    return new Promise<void>((resolve) => this.#drainWaiters.push(() => resolve())).then(() => this.whenBelow(bytes));
  }

  #wakeDrain(): void {
    for (const w of this.#drainWaiters.splice(0)) w();
  }
}
