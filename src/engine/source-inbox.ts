// What the source hears from the destination, read in the background for the whole
// migration: PAGE_REQUESTs (post-copy faults) queue up, COMMIT_ACK resolves `ack`, ABORT
// or a failed connection fails the migration. After the acknowledgement only the
// destination's last word matters: it closes after activating, or refuses with ABORT.
import { PagewireError } from "../errors.js";
import { FrameError, FrameType, frameTypeName } from "../wire/frame.js";
import { Message, ProtocolError, type CommitAck } from "../wire/messages.js";
import type { Channel } from "./channel.js";

export type FinalWord = "closed" | "abort";

export class SourceInbox {
  readonly #ch: Channel;
  readonly #requests: number[] = [];
  #error: unknown = null;
  #ack!: { resolve: (a: CommitAck) => void; reject: (e: unknown) => void };
  readonly ack: Promise<CommitAck>;
  #setFinalWord!: (w: FinalWord) => void;
  /** The destination's last word after the acknowledgement. */
  readonly finalWord: Promise<FinalWord>;

  constructor(ch: Channel) {
    this.#ch = ch;
    this.ack = new Promise((resolve, reject) => (this.#ack = { resolve, reject }));
    this.ack.catch(() => {});
    this.finalWord = new Promise((resolve) => (this.#setFinalWord = resolve));
  }

  /** Starts reading frames; runs until the connection ends. */
  start(): void {
    void this.#pump();
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
        if (!acked) return this.#fail(err);
        if (err instanceof FrameError) continue; // a bad frame after the commit point changes nothing
        return this.#setFinalWord("closed");
      }
      try {
        if (!f) {
          if (acked) return this.#setFinalWord("closed");
          return this.#fail(new ProtocolError("CONNECTION_CLOSED", "destination closed the connection before the commit"));
        }
        if (f.type === FrameType.ABORT) {
          const a = Message.ABORT.decode(f.payload);
          this.#fail(new PagewireError(a.code, `destination aborted: ${a.message}`));
          if (acked) this.#setFinalWord("abort");
          return;
        }
        if (acked) continue;
        if (f.type === FrameType.PAGE_REQUEST) {
          this.#requests.push(Message.PAGE_REQUEST.decode(f.payload));
        } else if (f.type === FrameType.COMMIT_ACK) {
          this.#ack.resolve(Message.COMMIT_ACK.decode(f.payload));
          acked = true;
        } else {
          return this.#fail(new ProtocolError("PROTOCOL_STAGE", `unexpected ${frameTypeName(f.type)} frame from the destination`));
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
  }
}
