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
   * A buffer in kernel memory is sealed there (checksum without a copy) and then copied
   * out once, before anything awaits, so the caller may reuse it right away.
   */
  async sendInPlace(type: number, buffer: Uint8Array, length: number): Promise<number> {
    const sealed = this.#writer.sealInPlace(type, buffer, length);
    const frame = this.kernel.owns(sealed) ? sealed.slice() : sealed;
    if (this.#limiter) await this.#limiter.take(frame.length);
    this.bytesSent += frame.length;
    await this.#transmit(frame);
    return frame.length;
  }

  async #transmit(frame: Uint8Array): Promise<void> {
    if (this.#sendTimeout === undefined) return this.transport.send(frame);
    const sent = this.transport.send(frame);
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
   * allocation that grows memory).
   */
  async receive(timeout?: { seconds: number; stage: string }): Promise<Frame | null> {
    const raw = timeout ? await this.#receiveWithin(timeout.seconds, timeout.stage) : await this.transport.receive();
    if (!raw) return null;
    const k = this.kernel;
    if (!this.#arena || this.#arena.bytes < raw.length) {
      if (this.#arena) k.free(this.#arena);
      this.#arena = k.alloc(Math.max(raw.length, 1 << 20), 64);
    }
    const view = k.bytes(this.#arena).subarray(0, raw.length);
    view.set(raw);
    return this.#reader.open(view);
  }

  async #receiveWithin(seconds: number, stage: string): Promise<Uint8Array | null> {
    const next = this.transport.receive();
    next.catch(() => {});
    const raw = await withTimeout(next, seconds, TIMED_OUT, this.#clock);
    if (raw !== TIMED_OUT) return raw;
    this.transport.close();
    throw new MigrationTimeoutError(timeoutCode(stage), `${stage}: no frame from the peer for ${seconds} s`);
  }

  /** Returns the receive arena to the kernel heap. */
  dispose(): void {
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
