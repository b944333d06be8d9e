import type { KernelRegion } from "../kernel/heap.js";
import type { Kernel } from "../kernel/kernel.js";
import { frameChecksum, FrameReader, FrameWriter, frameTypeName, type Frame, type FrameKey } from "../wire/frame.js";
import type { TokenBucket } from "../transport/rate-limit.js";
import type { Transport } from "../transport/transport.js";
import { PagewireError, type PagewireErrorCode } from "../errors.js";
import { realClock, withTimeout, type Clock } from "../util/clock.js";
import { FrameType } from "../wire/frame.js";
import { Message, ProtocolError, type MessageCodec } from "../wire/messages.js";
import { MigrationTimeoutError } from "./ownership.js";

export interface ChannelOptions {
  /** Rate limit applied to outgoing frames. */
  limiter?: TokenBucket | null;
  maxPayload?: number;
  clock?: Clock;
  /** Seconds one send may wait for the transport (backpressure from a silent peer); absent: no limit. */
  sendTimeout?: number;
}

const TIMED_OUT = Symbol("timed out");

/** The timeout code for a wait in `stage` (a handshake step or a destination state). */
function timeoutCode(stage: string): PagewireErrorCode {
  switch (stage) {
    case "handshake":
      return "TIMEOUT_HANDSHAKE";
    case "resume":
      return "TIMEOUT_RESUME";
    case "prepared":
      return "TIMEOUT_PREPARED";
    case "postcopy":
      return "TIMEOUT_POSTCOPY";
    default:
      return "TIMEOUT_RECEIVING";
  }
}

/**
 * One side's view of a migration connection: seals and numbers outgoing frames,
 * verifies incoming ones, applies the rate limit, and counts bytes.
 */
export class Channel {
  readonly transport: Transport;
  readonly #writer: FrameWriter;
  readonly #reader: FrameReader;
  #limiter: TokenBucket | null;
  readonly kernel: Kernel;
  readonly #clock: Clock;
  readonly #sendTimeout: number | undefined;
  #arena: KernelRegion | null = null;
  /** receiveInto calls not settled yet (each may write into the arena). */
  #receiving = 0;
  #disposed = false;
  bytesSent = 0;

  constructor(kernel: Kernel, transport: Transport, key: FrameKey | null, options: ChannelOptions = {}) {
    this.transport = transport;
    this.kernel = kernel;
    const check = frameChecksum(kernel);
    this.#writer = new FrameWriter(check, key);
    this.#reader = new FrameReader(check, key, options.maxPayload);
    this.#limiter = options.limiter ?? null;
    this.#clock = options.clock ?? realClock;
    this.#sendTimeout = options.sendTimeout;
  }

  setSessionNonce(nonce: Uint8Array): void {
    this.#writer.setSessionNonce(nonce);
    this.#reader.setSessionNonce(nonce);
  }

  /** Seals and sends one frame, after waiting for rate-limit budget; returns its size in bytes. */
  async send(type: number, payload: Uint8Array): Promise<number> {
    const frame = this.#writer.seal(type, payload);
    if (this.#limiter) await this.#limiter.take(frame.length);
    this.bytesSent += frame.length;
    await this.#transmit(frame);
    return frame.length;
  }

  /** Encodes and sends one protocol message. */
  sendMessage<T>(message: MessageCodec<T>, value: T): Promise<number> {
    return this.send(message.type, message.encode(value));
  }

  /** The next frame, which must carry `message`; returns it decoded. */
  async expectMessage<T>(message: MessageCodec<T>, stage: string, seconds?: number): Promise<T> {
    return message.decode((await this.expect(message.type, stage, seconds)).payload);
  }

  /**
   * Sends a frame whose payload the caller built in place (see FrameWriter.sealInPlace).
   * A buffer in kernel memory is sealed there (checksum without a copy). With `release`,
   * shared kernel memory and a transport that borrows frames (Transport.sendBorrowed), the
   * frame goes out of kernel memory as it is: the caller keeps the buffer untouched until
   * `release` runs. Otherwise it is copied out once, before anything awaits (into a buffer
   * from the transport's pool, Transport.allocFrame, when it has one: no allocation per
   * frame), and `release` runs at once. Shared memory only: a view of unshared memory
   * dies when the memory grows, and a queued write would then send nothing.
   */
  async sendInPlace(type: number, buffer: Uint8Array, length: number, release?: () => void): Promise<number> {
    const sealed = this.#writer.sealInPlace(type, buffer, length);
    const owned = this.kernel.owns(sealed);
    // a view the kernel does not own is a JS buffer, or shared kernel memory seen before it grew
    const lend = release !== undefined && this.transport.sendBorrowed !== undefined && (!owned || this.kernel.shared);
    const frame = lend || !owned ? sealed : this.#copyOut(sealed);
    if (!lend) release?.();
    let lent = false;
    try {
      if (this.#limiter) await this.#limiter.take(frame.length);
      this.bytesSent += frame.length;
      lent = lend;
      await this.#transmit(frame, lend ? release : undefined);
    } finally {
      if (lend && !lent) release!(); // the wait for budget failed: the transport never had it
    }
    return frame.length;
  }

  /** True when sendInPlace with `release` sends frames in kernel memory without a copy. */
  get lendsKernelFrames(): boolean {
    return this.kernel.shared && this.transport.sendBorrowed !== undefined;
  }

  #copyOut(sealed: Uint8Array): Uint8Array {
    const n = sealed.length;
    const buf = this.transport.allocFrame?.(n);
    if (!buf) return sealed.slice();
    const frame = buf.length === n ? buf : buf.subarray(0, n);
    frame.set(sealed);
    return frame;
  }

  /** Sends `frame` (lent, when `release` is given: see sendInPlace), within the send timeout. */
  async #transmit(frame: Uint8Array, release?: () => void): Promise<void> {
    const t = this.transport;
    const send = () => (release ? t.sendBorrowed!(frame, release) : t.send(frame));
    if (this.#sendTimeout === undefined) return send();
    const sent = send();
    sent.catch(() => {});
    if ((await withTimeout(sent, this.#sendTimeout, TIMED_OUT, this.#clock)) === TIMED_OUT) {
      this.transport.close();
      throw new MigrationTimeoutError("TIMEOUT_SEND", `the peer took no data for ${this.#sendTimeout} s`);
    }
  }

  /**
   * The next verified frame, or null at a clean end of stream. The frame is copied once
   * into a kernel-memory arena, so checksum and decoders run on it without more copies;
   * its payload is a view of that arena, valid until the next receive (or a kernel
   * allocation that grows memory). A transport with `receiveInto` writes the frame into
   * the arena itself (TCP: straight from the socket's read buffer when this receive was
   * waiting for it); otherwise the frame `receive` returns is copied in.
   */
  async receive(timeout?: { seconds: number; stage: string }): Promise<Frame | null> {
    const t = this.transport;
    if (t.receiveInto) {
      // the transport writes into the arena until this settles (or it is closed): dispose waits for it
      this.#receiving++;
      let frame: Frame | null = null;
      try {
        const next = t.receiveInto(this.#sink);
        const n = timeout ? await this.#within(next, timeout.seconds, timeout.stage) : await next;
        if (n === null) return null;
        frame = this.#reader.open(this.kernel.bytes(this.#arena!).subarray(0, n));
        return frame;
      } finally {
        // disposed meanwhile: free the arena now, unless the frame returned lives in it
        if (--this.#receiving === 0 && this.#disposed && !frame) this.#freeArena();
      }
    }
    const raw = timeout ? await this.#within(t.receive(), timeout.seconds, timeout.stage) : await t.receive();
    if (!raw) return null;
    const view = this.#sink(raw.length).subarray(0, raw.length);
    view.set(raw);
    return this.#reader.open(view);
  }

  /** The arena, at least `size` bytes (grown when a frame is larger), as a fresh view. */
  readonly #sink = (size: number): Uint8Array => {
    const k = this.kernel;
    if (!this.#arena || this.#arena.bytes < size) {
      if (this.#arena) k.free(this.#arena);
      this.#arena = null;
      this.#arena = k.alloc(Math.max(size, 1 << 20), 64);
    }
    return k.bytes(this.#arena);
  };

  async #within<T>(next: Promise<T>, seconds: number, stage: string): Promise<T> {
    next.catch(() => {});
    const raw = await withTimeout(next, seconds, TIMED_OUT, this.#clock);
    if (raw !== TIMED_OUT) return raw;
    this.transport.close();
    throw new MigrationTimeoutError(timeoutCode(stage), `${stage}: no frame from the peer for ${seconds} s`);
  }

  /**
   * Returns the receive arena to the kernel heap. While a receive is pending the transport
   * may still write into the arena: then it is freed once that receive settles without a
   * frame (a frame it returns stays valid; a later receive frees it on the same terms).
   */
  dispose(): void {
    this.#disposed = true;
    if (this.#receiving === 0) this.#freeArena();
  }

  #freeArena(): void {
    if (this.#arena) this.kernel.free(this.#arena);
    this.#arena = null;
  }

  /**
   * The next frame, which must be of type `want`, within `seconds` when given. A peer's
   * ABORT becomes an error with the peer's code and reason.
   */
  async expect(want: number, stage: string, seconds?: number): Promise<Frame> {
    const f = await this.receive(seconds === undefined ? undefined : { seconds, stage });
    if (!f)
      throw new ProtocolError(
        "CONNECTION_CLOSED",
        `${stage}: connection closed while waiting for ${frameTypeName(want)}`,
      );
    if (f.type === FrameType.ABORT && want !== FrameType.ABORT) {
      const a = Message.ABORT.decode(f.payload);
      throw new PagewireError(a.code, `the peer aborted: ${a.message}`);
    }
    if (f.type !== want)
      throw new ProtocolError("PROTOCOL_STAGE", `${stage}: got ${frameTypeName(f.type)}, want ${frameTypeName(want)}`);
    return f;
  }
}
