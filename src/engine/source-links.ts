// The source's connections to one destination: the current one (a channel and what the
// destination says on it) and, after a loss, new ones opened with `reconnect` and
// introduced by RESUME within the reconnect window.
import type { Kernel } from "../kernel/kernel.js";
import type { TokenBucket } from "../transport/rate-limit.js";
import type { Transport } from "../transport/transport.js";
import type { Clock } from "../util/clock.js";
import type { FrameKey } from "../wire/frame.js";
import type { SourceDecision } from "../wire/messages.js";
import { Channel } from "./channel.js";
import { sendResume, type Session } from "./handshake.js";
import { isLinkFailure, type MigrationTimeouts } from "./ownership.js";
import { SourceInbox } from "./source-inbox.js";

/** One connection to the destination: its channel and what the destination says on it. */
export interface Link {
  ch: Channel;
  inbox: SourceInbox;
}

export interface SourceLinksOptions {
  kernel: Kernel;
  key: FrameKey | null;
  limiter: TokenBucket;
  clock: Clock;
  timeouts: MigrationTimeouts | null;
  /** Opens a new connection to the same destination; absent: a lost connection stays lost. */
  reconnect?: () => Promise<Transport>;
}

export class SourceLinks {
  readonly #o: SourceLinksOptions;
  readonly #all: Link[] = [];
  #current: Link | null = null;

  constructor(options: SourceLinksOptions) {
    this.#o = options;
  }

  /** The connection in use (the last opened). */
  get current(): Link {
    return this.#current!;
  }

  /** Frame bytes sent over every connection. */
  get bytesSent(): number {
    return this.#all.reduce((sum, l) => sum + l.ch.bytesSent, 0);
  }

  /** Makes `transport` the current connection. */
  open(transport: Transport): Link {
    const o = this.#o;
    const ch = new Channel(o.kernel, transport, o.key, {
      limiter: o.limiter,
      clock: o.clock,
      sendTimeout: o.timeouts?.frame,
    });
    const link = { ch, inbox: new SourceInbox(ch) };
    this.#all.push(link);
    this.#current = link;
    return link;
  }

  /** Closes the current connection (the destination notices and waits for a new one). */
  closeCurrent(): void {
    this.#current?.ch.transport.close();
  }

  /** Tries `reconnect` until a RESUME is delivered or the window ends; null when it ends (or there is no `reconnect`). */
  async resume(session: Session, decision: SourceDecision): Promise<Link | null> {
    const o = this.#o;
    if (!o.reconnect) return null;
    const t = o.timeouts;
    const deadline = o.clock.now() + (t?.reconnectWindow ?? Infinity);
    for (let attempt = 0; o.clock.now() < deadline; attempt++) {
      let link: Link | null = null;
      try {
        link = this.open(await o.reconnect());
        await sendResume(link.ch, session, decision, t?.handshake);
        return link;
      } catch (err) {
        link?.ch.transport.close();
        if (!isLinkFailure(err) && (err as { code?: string }).code !== "PROTOCOL_STAGE") throw err;
        // an abort notice is best effort: nothing listening any more means no destination is left to tell
        if (decision === "abort" && refused(err)) return null;
        await o.clock.sleep(Math.min(1, 0.02 * 2 ** Math.min(attempt, 6)));
      }
    }
    return null;
  }

  /** Frees every connection's receive arena. */
  dispose(): void {
    for (const l of this.#all) l.ch.dispose();
  }
}

/** The connection was refused: nothing listens at the destination's address. */
function refused(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } };
  return e.code === "CONNECT_FAILED" && e.cause?.code === "ECONNREFUSED";
}
