import { PagewireError } from "../errors.js";

/**
 * A bidirectional, ordered, reliable carrier of whole frames (see frame.ts). The engine
 * speaks only this interface; the in-process pair, TCP (optionally TLS) and MessagePort
 * implement it.
 *
 * Buffers on the data path. A fresh large buffer costs a page fault per 4 KiB when first
 * written, so the data path allocates none per frame where the transport can avoid it:
 *
 *   send     Channel copies a sealed frame out of kernel memory once, into `allocFrame(n)`
 *            (a buffer from the transport's pool), and passes it to `send`, which returns
 *            it to the pool when the transport is done with it: TCP once the socket has
 *            written it (at once when the kernel took it all inside write(), else the write
 *            callback); the in-process pair once the peer has copied it out in
 *            `receiveInto`. MessagePort has no `allocFrame`: its frames are transferred to
 *            the other side, so there is nothing to give back.
 *   receive  `receiveInto(sink)` copies the next frame into memory the consumer provides
 *            (Channel: its arena in kernel memory). Plain TCP reads into one reusable
 *            buffer and copies a frame that starts (or goes on) while a `receiveInto` waits
 *            straight from it into the sink: one copy from the socket to kernel memory in
 *            all. Frames that arrive ahead of the consumer wait in pooled buffers, which
 *            `receiveInto` copies and gives back. `receive()` instead hands the frame over
 *            for good (the pool forgets it).
 *
 * Both are optional: a transport (or a wrapper around one) without them is used through
 * `send`/`receive` alone, with one allocation per frame. A wrapper may forward
 * `allocFrame` only together with `send`, passing the frame on unchanged and not keeping
 * it (the inner transport reuses it after sending). A wrapper that forwards `receiveInto`
 * and stops waiting for it before it settles (a timeout, an interrupt) must close the
 * inner transport, as Channel does on a timeout: else the sink may still be written after
 * the consumer gave its memory back.
 */
export interface Transport {
  /** Queues one frame. Resolves once the transport can take more (backpressure). Ownership of `frame` passes to the transport. */
  send(frame: Uint8Array): Promise<void>;
  /**
   * Optional: a buffer of at least `size` bytes to build one frame in, then pass to `send`
   * (a prefix of it, `subarray(0, n)`). It comes from the transport's pool and goes back
   * to it once sent; a buffer never passed to `send` is simply garbage-collected.
   */
  allocFrame?(size: number): Uint8Array;
  /**
   * Optional: sends `frame` as `send` does, but only borrows its bytes (no copy): the
   * transport calls `release` exactly once when it will read them no more (written to the
   * connection, failed, or dropped at close), and until then the caller leaves them as they
   * are. Lets a sender hand out frames built in its own memory (kernel memory) and reuse
   * the buffer only once it is on the wire.
   */
  sendBorrowed?(frame: Uint8Array, release: () => void): Promise<void>;
  /** The next frame, or null once the peer closed cleanly. Rejects with a TransportError or FrameError. */
  receive(): Promise<Uint8Array | null>;
  /**
   * Optional: copies the next frame into `sink(size)` and resolves to its size (the frame
   * is `sink(size).subarray(0, size)`), or null once the peer closed cleanly; rejects as
   * `receive` does. The transport may call `sink` several times for one frame, always with
   * the same size, until the promise settles, and writes only into the view the latest
   * call returned (so the sink may hand out a fresh view of memory that can move, such as
   * kernel memory). After `close()` it calls `sink` no more.
   */
  receiveInto?(sink: FrameSink): Promise<number | null>;
  /** Closes both directions; pending receives resolve null. */
  close(): void;
  /** Frame bytes sent and received so far. */
  readonly bytesSent: number;
  readonly bytesReceived: number;
}

/** Where `receiveInto` puts a frame: a view of at least `size` bytes (see Transport.receiveInto). */
export type FrameSink = (size: number) => Uint8Array;

/** The carrier failed (connection lost, peer gone). */
export class TransportError extends PagewireError {}

/**
 * A frame being written straight into a waiting consumer's sink (FrameQueue.claimReader):
 * the writer calls `sink(size)` for every piece, then `settle`, or `fail`.
 */
export interface WaitingReader {
  sink: FrameSink;
  settle(size: number | null): void;
  fail(error: unknown): void;
}

interface Waiter {
  resolve: (f: Uint8Array | number | null) => void;
  reject: (e: unknown) => void;
  sink: FrameSink | null;
}

/**
 * Receive side of a transport: frames queued until asked for, then errors or end. A queued
 * frame may carry `done`, called once its bytes have been copied out by `nextInto` (to
 * give a pooled buffer back); `next` hands the frame over for good and never calls it.
 */
export class FrameQueue {
  #frames: Array<{ frame: Uint8Array; done: (() => void) | undefined }> = [];
  #waiters: Waiter[] = [];
  #error: unknown = null;
  #ended = false;
  #bytes = 0;
  #drainWaiters: Array<() => void> = [];

  /** Bytes queued and not yet received. */
  get queuedBytes(): number {
    return this.#bytes;
  }

  /** Frames queued and not yet received. */
  get queuedFrames(): number {
    return this.#frames.length;
  }

  /** True once end() or fail() was called. */
  get closed(): boolean {
    return this.#ended || this.#error !== null;
  }

  push(frame: Uint8Array, done?: () => void): void {
    if (this.#ended || this.#error) return;
    const w = this.#waiters.shift();
    if (w) deliver(w, frame, done);
    else {
      this.#frames.push({ frame, done });
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
    const q = this.#take();
    if (q) return Promise.resolve(q.frame);
    if (this.#error) return Promise.reject(this.#error);
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve, reject) =>
      this.#waiters.push({ resolve: resolve as Waiter["resolve"], reject, sink: null }),
    );
  }

  /** The next frame copied into `sink` (see Transport.receiveInto); calls the frame's `done` after the copy. */
  nextInto(sink: FrameSink): Promise<number | null> {
    const q = this.#take();
    if (q) {
      try {
        copyInto(sink, q.frame);
        return Promise.resolve(q.frame.length);
      } catch (err) {
        return Promise.reject(err);
      } finally {
        q.done?.();
      }
    }
    if (this.#error) return Promise.reject(this.#error);
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve, reject) =>
      this.#waiters.push({ resolve: resolve as Waiter["resolve"], reject, sink }),
    );
  }

  /**
   * When nothing is queued and the first waiting consumer gave a sink (nextInto), takes
   * that consumer out of the queue and returns it, so that the next frame can be written
   * straight into its sink. Null otherwise (queue the frame with push).
   */
  claimReader(): WaitingReader | null {
    const w = this.#waiters[0];
    if (!w?.sink || this.#frames.length > 0 || this.#ended || this.#error) return null;
    this.#waiters.shift();
    return { sink: w.sink, settle: (size) => w.resolve(size), fail: (err) => w.reject(err) };
  }

  /** Resolves when fewer than `bytes` are queued (or the queue ended). */
  whenBelow(bytes: number): Promise<void> {
    if (this.#bytes < bytes || this.#ended || this.#error) return Promise.resolve();
    return new Promise<void>((resolve) => this.#drainWaiters.push(() => resolve())).then(() => this.whenBelow(bytes));
  }

  #take(): { frame: Uint8Array; done: (() => void) | undefined } | undefined {
    const q = this.#frames.shift();
    if (q) {
      this.#bytes -= q.frame.length;
      this.#wakeDrain();
    }
    return q;
  }

  #wakeDrain(): void {
    for (const w of this.#drainWaiters.splice(0)) w();
  }
}

function copyInto(sink: FrameSink, frame: Uint8Array): void {
  sink(frame.length).set(frame);
}

function deliver(w: Waiter, frame: Uint8Array, done: (() => void) | undefined): void {
  if (!w.sink) {
    w.resolve(frame);
    return;
  }
  try {
    copyInto(w.sink, frame);
    w.resolve(frame.length);
  } catch (err) {
    w.reject(err);
  } finally {
    done?.();
  }
}
