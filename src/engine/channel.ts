import type { KernelRegion } from "../kernel/heap.js";
import type { Kernel } from "../kernel/kernel.js";
import { frameChecksum, FrameReader, FrameWriter, frameTypeName, type Frame, type FrameKey } from "../wire/frame.js";
import type { TokenBucket } from "../transport/rate-limit.js";
import type { Transport } from "../transport/transport.js";
import { ProtocolError, type MessageCodec } from "../wire/messages.js";

/**
 * One side's view of a migration connection: seals and numbers outgoing frames,
 * verifies incoming ones, applies the rate limit, and counts bytes.
 */
export class Channel {
  readonly transport: Transport;
  readonly #writer: FrameWriter;
  readonly #reader: FrameReader;
  #limiter: TokenBucket | null;
  readonly #kernel: Kernel;
  #arena: KernelRegion | null = null;
  bytesSent = 0;

  constructor(kernel: Kernel, transport: Transport, key: FrameKey | null, limiter: TokenBucket | null = null, maxPayload?: number) {
    this.transport = transport;
    this.#kernel = kernel;
    const check = frameChecksum(kernel);
    this.#writer = new FrameWriter(check, key);
    this.#reader = new FrameReader(check, key, maxPayload);
    this.#limiter = limiter;
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
    await this.transport.send(frame);
    return frame.length;
  }

  /** Encodes and sends one protocol message. */
  sendMessage<T>(message: MessageCodec<T>, value: T): Promise<number> {
    return this.send(message.type, message.encode(value));
  }

  /** The next frame, which must carry `message`; returns it decoded. */
  async expectMessage<T>(message: MessageCodec<T>, stage: string): Promise<T> {
    return message.decode((await this.expect(message.type, stage)).payload);
  }

  /**
   * Sends a frame whose payload the caller built in place (see FrameWriter.sealInPlace).
   * A buffer in kernel memory is sealed there (checksum without a copy) and then copied
   * out once, before anything awaits, so the caller may reuse it right away.
   */
  async sendInPlace(type: number, buffer: Uint8Array, length: number): Promise<number> {
    const sealed = this.#writer.sealInPlace(type, buffer, length);
    const frame = this.#kernel.owns(sealed) ? sealed.slice() : sealed;
    if (this.#limiter) await this.#limiter.take(frame.length);
    this.bytesSent += frame.length;
    await this.transport.send(frame);
    return frame.length;
  }

  /**
   * The next verified frame, or null at a clean end of stream. The frame is copied once
   * into a kernel-memory arena, so checksum and decoders run on it without more copies;
   * its payload is a view of that arena, valid until the next receive (or a kernel
   * allocation that grows memory).
   */
  async receive(): Promise<Frame | null> {
    const raw = await this.transport.receive();
    if (!raw) return null;
    const k = this.#kernel;
    if (!this.#arena || this.#arena.bytes < raw.length) {
      if (this.#arena) k.free(this.#arena);
      this.#arena = k.alloc(Math.max(raw.length, 1 << 20), 64);
    }
    const view = k.bytes(this.#arena).subarray(0, raw.length);
    view.set(raw);
    return this.#reader.open(view);
  }

  /** Returns the receive arena to the kernel heap. */
  dispose(): void {
    if (this.#arena) this.#kernel.free(this.#arena);
    this.#arena = null;
  }

  /** The next frame, which must be of type `want`. */
  async expect(want: number, stage: string): Promise<Frame> {
    const f = await this.receive();
    if (!f) throw new ProtocolError("PROTOCOL_STAGE", `${stage}: connection closed while waiting for ${frameTypeName(want)}`);
    if (f.type !== want) throw new ProtocolError("PROTOCOL_STAGE", `${stage}: got ${frameTypeName(f.type)}, want ${frameTypeName(want)}`);
    return f;
  }
}
