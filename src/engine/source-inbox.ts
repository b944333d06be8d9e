// What the source hears from the destination on one connection, read in the background:
// PAGE_REQUESTs (post-copy faults, accepted only after the switch, bounded) queue up,
// COMMIT_ACK and ACTIVATED resolve their promises, ABORT or a failed connection fails
// every wait. A frame that does not verify after the acknowledgement changes nothing.
import { PagewireError } from "../errors.js";
import { FrameError, FrameType, frameTypeName } from "../wire/frame.js";
import { Message, ProtocolError, type CommitAck } from "../wire/messages.js";
import type { Channel } from "./channel.js";

/** Post-copy requests waiting at most: a destination that sends more is misbehaving. */
export const MAX_QUEUED_REQUESTS = 65536;

interface Waiter<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}

function waiter<T>(): Waiter<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((a, b) => ((resolve = a), (reject = b)));
  promise.catch(() => {});
  return { promise, resolve, reject };
}

export class SourceInbox {
  readonly #ch: Channel;
  readonly #requests: number[] = [];
  #error: unknown = null;
  #acceptRequests = false;
  readonly #ack = waiter<CommitAck>();
  readonly #activated = waiter<void>();

  constructor(ch: Channel) {
    this.#ch = ch;
  }

  /** Resolves with the destination's COMMIT_ACK. */
  get ack(): Promise<CommitAck> {
    return this.#ack.promise;
  }

  /** Resolves once the destination reports that it activated. */
  get activated(): Promise<void> {
    return this.#activated.promise;
  }

  /** Starts reading frames; runs until the connection ends. */
  start(): void {
    void this.#pump();
  }

  /** From the post-copy switch on, PAGE_REQUESTs are expected. */
  acceptRequests(): void {
    this.#acceptRequests = true;
  }

  /** The next post-copy demand request, if one arrived. */
  nextRequest(): number | undefined {
    return this.#requests.shift();
  }

  /** The destination's failure (ABORT, bad frame, closed connection), or null. */
  get error(): unknown {
    return this.#error;
  }

  /** Throws the destination's failure, if any. */
  throwIfFailed(): void {
    if (this.#error) throw this.#error;
  }

  async #pump(): Promise<void> {
    let acked = false;
    for (;;) {
      let f;
      try {
        f = await this.#ch.receive();
      } catch (err) {
        if (acked && err instanceof FrameError) continue; // a bad frame after the acknowledgement changes nothing
        return this.#fail(err);
      }
      try {
        if (!f)
          return this.#fail(
            new ProtocolError(
              "CONNECTION_CLOSED",
              `destination closed the connection ${acked ? "before it activated" : "before the commit"}`,
            ),
          );
        switch (f.type) {
          case FrameType.ABORT: {
            const a = Message.ABORT.decode(f.payload);
            return this.#fail(new PagewireError(a.code, `destination aborted: ${a.message}`));
          }
          case FrameType.PAGE_REQUEST:
            if (!this.#acceptRequests)
              throw new ProtocolError("PROTOCOL_STAGE", "PAGE_REQUEST before the post-copy switch");
            if (this.#requests.length >= MAX_QUEUED_REQUESTS)
              throw new ProtocolError("PROTOCOL_STAGE", `more than ${MAX_QUEUED_REQUESTS} post-copy requests queued`);
            if (!acked) this.#requests.push(Message.PAGE_REQUEST.decode(f.payload));
            break;
          case FrameType.COMMIT_ACK:
            if (acked) break;
            this.#ack.resolve(Message.COMMIT_ACK.decode(f.payload));
            acked = true;
            break;
          case FrameType.ACTIVATED:
            if (!acked) throw new ProtocolError("PROTOCOL_STAGE", "ACTIVATED before COMMIT_ACK");
            Message.ACTIVATED.decode(f.payload);
            this.#activated.resolve();
            return;
          default:
            throw new ProtocolError("PROTOCOL_STAGE", `unexpected ${frameTypeName(f.type)} frame from the destination`);
        }
      } catch (err) {
        if (!acked) return this.#fail(err);
      }
    }
  }

  #fail(err: unknown): void {
    if (this.#error) return;
    this.#error = err;
    this.#ack.reject(err);
    this.#activated.reject(err);
  }
}
