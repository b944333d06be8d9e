// Cuts frames out of a byte stream (TCP), for any split of the stream into chunks.
//
//   chunk ──► header (16 bytes, gathered across chunks) ──checkFrameHeader──► size
//         ──► the frame's bytes: into the sink of a waiting receiveInto (claimed from the
//             queue), else into a pooled buffer that is queued once complete
//
// The announced size is checked (FRAME_TOO_LARGE, FRAME_MAGIC, PROTOCOL_VERSION) before
// anything of the payload is buffered. A chunk is only read during push(): it may be a
// read buffer the socket reuses for the next read.
import { announcedFrameSize, FRAME_HEADER_BYTES } from "../wire/frame.js";
import type { FramePool } from "./frame-pool.js";
import type { FrameQueue, WaitingReader } from "./transport.js";

export class FrameCutter {
  readonly #inbox: FrameQueue;
  readonly #pool: FramePool;
  readonly #maxPayload: number;
  readonly #head = new Uint8Array(FRAME_HEADER_BYTES);
  #headFill = 0;
  /** Size of the frame being received; 0 while its header is incomplete. */
  #size = 0;
  #fill = 0;
  /** The consumer the frame goes to directly, or null: it goes into #buf and then the queue. */
  #reader: WaitingReader | null = null;
  #buf: Uint8Array | null = null;
  #direct = 0;

  constructor(inbox: FrameQueue, pool: FramePool, maxPayload: number) {
    this.#inbox = inbox;
    this.#pool = pool;
    this.#maxPayload = maxPayload;
  }

  /** Frames written straight into a waiting consumer's sink (all or from some byte on). */
  get direct(): number {
    return this.#direct;
  }

  /** Null between frames; inside one, the bytes of it (or of its header) received and expected. */
  get partial(): { got: number; need: number } | null {
    if (this.#headFill === 0) return null;
    return this.#size ? { got: this.#fill, need: this.#size } : { got: this.#headFill, need: FRAME_HEADER_BYTES };
  }

  /**
   * Cuts frames out of bytes [0, length) of `chunk`. Throws a FrameError on a bad header;
   * the stream is then unusable (fail it).
   */
  push(chunk: Uint8Array, length = chunk.length): void {
    let at = 0;
    while (at < length) {
      if (this.#size === 0) {
        const take = Math.min(FRAME_HEADER_BYTES - this.#headFill, length - at);
        this.#head.set(chunk.subarray(at, at + take), this.#headFill);
        this.#headFill += take;
        at += take;
        if (this.#headFill < FRAME_HEADER_BYTES) return;
        this.#begin(announcedFrameSize(this.#head, this.#maxPayload));
      }
      const take = Math.min(this.#size - this.#fill, length - at);
      this.#write(chunk.subarray(at, at + take));
      at += take;
      if (this.#fill === this.#size) this.#finish();
    }
  }

  /** The stream failed: the consumer being written to directly and the queue get `err`. */
  fail(err: unknown): void {
    const reader = this.#reader;
    this.#reader = null;
    reader?.fail(err);
    this.#inbox.fail(err);
  }

  /** The stream ended (or was closed here): the consumer being written to gets null, the queue ends. */
  end(): void {
    const reader = this.#reader;
    this.#reader = null;
    reader?.settle(null);
    this.#inbox.end();
  }

  /** A frame of `size` bytes starts: straight to a waiting receiveInto, else into a pooled buffer. */
  #begin(size: number): void {
    this.#size = size;
    this.#fill = 0;
    this.#reader = this.#inbox.claimReader();
    this.#buf = this.#reader ? null : this.#pool.acquire(size);
    this.#write(this.#head);
  }

  #write(bytes: Uint8Array): void {
    if (!this.#reader && this.#fill > 0) {
      // a receiveInto that began to wait after this frame started (nothing queued ahead of
      // it) takes the frame from here on: what is in the pooled buffer moves over once
      const reader = this.#inbox.claimReader();
      if (reader) {
        const buf = this.#buf!;
        reader.sink(this.#size).set(buf.subarray(0, this.#fill));
        this.#pool.release(buf);
        this.#buf = null;
        this.#reader = reader;
      }
    }
    // the sink is asked again for every piece: its memory may have moved (kernel memory grows)
    const into = this.#reader ? this.#reader.sink(this.#size) : this.#buf!;
    into.set(bytes, this.#fill);
    this.#fill += bytes.length;
  }

  #finish(): void {
    const size = this.#size;
    const reader = this.#reader;
    const buf = this.#buf;
    this.#size = this.#fill = this.#headFill = 0;
    this.#reader = null;
    this.#buf = null;
    if (reader) {
      this.#direct++;
      reader.settle(size);
    } else {
      const pool = this.#pool;
      this.#inbox.push(buf!.subarray(0, size), pool.owns(buf!) ? () => pool.release(buf!) : undefined);
    }
  }
}
