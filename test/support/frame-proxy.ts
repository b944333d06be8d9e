// A TCP proxy on 127.0.0.1 that reads the migration's frame stream as it forwards it, for
// tests that act at a chosen frame between two real processes (`pagewire send` and
// `pagewire receive`):
//
//   source ──connect──► proxy.port ══ forwards both ways, frame by frame ══► target port
//                         │
//                         ├─ frames: every frame seen, in the order it was forwarded
//                         │  (index over both directions and all connections, direction,
//                         │  type, seq, payload length, occurrence of its direction + type)
//                         └─ after(match, hook, { silence }): once the matching frame has been
//                            forwarded, `hook` runs while every connection holds still (nothing
//                            more is forwarded either way until it settles). With `silence`,
//                            that side counts as dead from the frame on: nothing more it sent
//                            is forwarded (nor recorded), nothing more is forwarded to it, and
//                            once the hook settled the other side sees its connections end:
//                            "SIGKILL a process right after frame X passed" then means that
//                            the survivor saw exactly the frames up to X, however far the
//                            victim had run ahead into its socket buffers
//
// A frame is header (16 bytes: magic:u32 version:u8 type:u8 flags:u16 seq:u32 length:u32,
// little-endian) + payload + trailer (4-byte checksum, + 32-byte HMAC when flags & 1); the
// proxy cuts chunks at frame ends, so the frame a hook waits for is written whole and
// nothing after it. Bytes that do not start with the frame magic are forwarded unparsed.
//
// When one side closes, what the proxy still holds from it is delivered to the other side,
// which then sees the end of the stream (FIN); the proxy keeps reading that other side until
// it closes, so frames sent towards a side that is gone are still recorded (`delivered:
// false`). Flow control is end to end (pause/resume), as in tcp-proxy.ts.
import net from "node:net";
import { FRAME_HEADER_BYTES, FRAME_MAGIC, frameSize, frameTypeName } from "../../src/wire/frame.js";

/** "to-destination": from the connecting side (the source) to the target; "to-source": back. */
export type FrameDirection = "to-destination" | "to-source";

export interface FrameEvent {
  /** 0-based, over both directions and every connection, in the order frames were forwarded. */
  index: number;
  /** 1-based connection number. */
  connection: number;
  direction: FrameDirection;
  type: number;
  /** The frame type's name (HELLO, PAGES, …). */
  name: string;
  seq: number;
  /** Payload bytes. */
  length: number;
  keyed: boolean;
  /** 1-based among the frames of the same direction and type, all connections. */
  occurrence: number;
  /** False when it went nowhere: its receiver's socket was gone, or that side was silenced. */
  delivered: boolean;
}

/** A frame by overall index, or by type (with direction and occurrence: default any, 1st). */
export type FrameMatch = { index: number } | { type: number; direction?: FrameDirection; occurrence?: number };

export interface AfterOptions {
  /** The side that counts as dead from the matched frame on (see the top of the file). */
  silence?: "source" | "destination";
}

export interface FrameProxyOptions {
  /** Called synchronously for every frame once it was forwarded. */
  onFrame?: (e: FrameEvent) => void;
}

interface Lane {
  connection: number;
  direction: FrameDirection;
  from: net.Socket;
  to: net.Socket;
  /** Header bytes of the frame being read (up to 16). */
  header: Buffer;
  /** Bytes of the current frame after its header still to come (-1: reading a header). */
  left: number;
  /** Set once the stream did not start a frame where one was due: the rest goes unparsed. */
  unparsed: boolean;
  /** The frame being read, known once its header is complete. */
  current: Omit<FrameEvent, "index" | "occurrence" | "delivered"> | null;
  /** Chunks received while the proxy was holding. */
  held: Buffer[];
  /** The `from` side ended; `to` is ended once everything held was delivered. */
  ended: boolean;
  /** `from` was silenced: what it sends is dropped unrecorded. */
  mute: boolean;
  /** `to` was silenced: frames are recorded but not forwarded. */
  deaf: boolean;
}

interface Armed {
  match: FrameMatch;
  hook: (e: FrameEvent) => unknown;
  silence: AfterOptions["silence"];
  resolve: (e: FrameEvent) => void;
  reject: (err: unknown) => void;
}

export class FrameProxy {
  readonly server: net.Server;
  readonly #target: { host: string; port: number };
  readonly #o: FrameProxyOptions;
  readonly #lanes = new Set<Lane>();
  readonly #sockets = new Set<net.Socket>();
  readonly #armed: Armed[] = [];
  readonly #occurrences = new Map<string, number>();
  #holding = false;
  #closed = false;
  /** Every frame seen, in forwarding order. */
  readonly frames: FrameEvent[] = [];
  /** Connections accepted. */
  connections = 0;
  /** Connections whose target could not be reached (the client was closed at once). */
  unreachable = 0;

  private constructor(server: net.Server, target: { host: string; port: number }, o: FrameProxyOptions) {
    this.server = server;
    this.#target = target;
    this.#o = o;
  }

  /** Listens on 127.0.0.1 (a free port) and forwards to 127.0.0.1:`targetPort`. */
  static start(targetPort: number, o: FrameProxyOptions = {}): Promise<FrameProxy> {
    return new Promise((resolve, reject) => {
      let proxy: FrameProxy;
      const server = net.createServer((socket) => proxy.#onConnection(socket));
      proxy = new FrameProxy(server, { host: "127.0.0.1", port: targetPort }, o);
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve(proxy));
    });
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /**
   * Arms `hook` for the first frame forwarded from now on that matches; it runs once that
   * frame was written to its receiver, and nothing more is forwarded (either way, any
   * connection) until it settles. With `silence`, that side counts as dead from this frame
   * on (its connections open now). Resolves with the frame after the hook, rejects with the
   * hook's error.
   */
  after(
    match: FrameMatch,
    hook: (e: FrameEvent) => unknown = () => {},
    options: AfterOptions = {},
  ): Promise<FrameEvent> {
    return new Promise((resolve, reject) =>
      this.#armed.push({ match, hook, silence: options.silence, resolve, reject }),
    );
  }

  /** The frames seen so far as one line, e.g. `CHALLENGE< HELLO> WELCOME< PAGES>×2 …` (> to the destination). */
  sequence(): string {
    const parts: string[] = [];
    let last = "";
    let n = 0;
    const flush = () => {
      if (n) parts.push(n > 1 ? `${last}×${n}` : last);
    };
    for (const f of this.frames) {
      const word = `${f.name}${f.direction === "to-destination" ? ">" : "<"}${f.delivered ? "" : "(dropped)"}`;
      if (word === last) n++;
      else {
        flush();
        last = word;
        n = 1;
      }
    }
    flush();
    return parts.join(" ");
  }

  /** Destroys every open connection (both sides), as a network cut would; new connections are still accepted. */
  cutConnections(): void {
    for (const s of this.#sockets) s.destroy();
  }

  /** Stops listening and destroys every connection; resolves once the server is closed. */
  close(): Promise<void> {
    this.#closed = true;
    for (const s of this.#sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  #track(s: net.Socket): void {
    this.#sockets.add(s);
    s.once("close", () => this.#sockets.delete(s));
    s.on("error", () => {}); // a killed peer: the close that follows is what counts
  }

  #onConnection(client: net.Socket): void {
    this.#track(client);
    if (this.#closed) {
      client.destroy();
      return;
    }
    client.pause(); // nothing is read until the target is there
    const upstream = net.connect(this.#target);
    this.#track(upstream);
    const connection = ++this.connections;
    const lane = (direction: FrameDirection, from: net.Socket, to: net.Socket): Lane => ({
      connection,
      direction,
      from,
      to,
      header: Buffer.alloc(0),
      left: -1,
      unparsed: false,
      current: null,
      held: [],
      ended: false,
      mute: false,
      deaf: false,
    });
    const up = lane("to-destination", client, upstream);
    const down = lane("to-source", upstream, client);
    let connected = false;
    upstream.once("connect", () => {
      connected = true;
      if (client.destroyed) return void upstream.destroy();
      this.#lanes.add(up);
      this.#lanes.add(down);
      for (const l of [up, down]) {
        l.from.on("data", (chunk: Buffer) => this.#receive(l, chunk));
        const ended = () => {
          l.ended = true;
          this.#end(l);
        };
        l.from.once("end", ended);
        l.from.once("close", ended);
      }
      if (this.#holding) return; // resumed when the hold ends
      client.resume();
    });
    upstream.once("close", () => {
      if (connected) return;
      this.unreachable++; // the target is gone (a killed receiver): the source sees a reset
      client.destroy();
    });
  }

  /** A chunk from `lane.from`: held while a hook runs, else forwarded frame by frame. */
  #receive(lane: Lane, chunk: Buffer): void {
    if (lane.mute) return;
    if (this.#holding || lane.held.length) {
      lane.held.push(chunk);
      lane.from.pause();
      return;
    }
    this.#forward(lane, chunk);
  }

  /** Writes `chunk` on, cutting it at frame ends; stops (holding the rest) when a hook fires. */
  #forward(lane: Lane, chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (lane.mute) return;
      if (lane.unparsed) {
        this.#write(lane, chunk.subarray(off));
        return;
      }
      if (lane.left < 0) {
        // header bytes
        const take = Math.min(FRAME_HEADER_BYTES - lane.header.length, chunk.length - off);
        lane.header = Buffer.concat([lane.header, chunk.subarray(off, off + take)]);
        if (lane.header.length < FRAME_HEADER_BYTES) {
          this.#write(lane, chunk.subarray(off, off + take));
          return;
        }
        const h = lane.header;
        if (h.readUInt32LE(0) !== FRAME_MAGIC) {
          lane.unparsed = true;
          this.#write(lane, chunk.subarray(off));
          return;
        }
        const length = h.readUInt32LE(12);
        const keyed = (h.readUInt16LE(6) & 1) !== 0;
        lane.current = {
          connection: lane.connection,
          direction: lane.direction,
          type: h[5],
          name: frameTypeName(h[5]),
          seq: h.readUInt32LE(8),
          length,
          keyed,
        };
        lane.left = frameSize(length, keyed) - FRAME_HEADER_BYTES;
        this.#write(lane, chunk.subarray(off, off + take));
        off += take;
        continue;
      }
      const take = Math.min(lane.left, chunk.length - off);
      this.#write(lane, chunk.subarray(off, off + take));
      off += take;
      lane.left -= take;
      if (lane.left > 0) return;
      // one whole frame forwarded
      const f = lane.current!;
      lane.header = Buffer.alloc(0);
      lane.left = -1;
      lane.current = null;
      const key = `${f.direction} ${f.type}`;
      const occurrence = (this.#occurrences.get(key) ?? 0) + 1;
      this.#occurrences.set(key, occurrence);
      const e: FrameEvent = {
        ...f,
        index: this.frames.length,
        occurrence,
        delivered: !lane.deaf && !lane.to.destroyed && lane.to.writable,
      };
      this.frames.push(e);
      this.#o.onFrame?.(e);
      const hit = this.#armed.findIndex((a) => matches(a.match, e));
      if (hit >= 0) {
        const [armed] = this.#armed.splice(hit, 1);
        if (off < chunk.length) lane.held.unshift(chunk.subarray(off));
        this.#hold(armed, e);
        return;
      }
    }
  }

  #write(lane: Lane, bytes: Buffer): void {
    if (bytes.length === 0 || lane.deaf || lane.to.destroyed || !lane.to.writable) return; // nobody to read it
    if (!lane.to.write(bytes)) {
      lane.from.pause();
      lane.to.once("drain", () => {
        if (!this.#holding && !lane.held.length) lane.from.resume();
      });
    }
  }

  /** Runs a hook with every connection held (silencing a side first), then lets everything through again. */
  #hold(armed: Armed, e: FrameEvent): void {
    this.#holding = true;
    for (const l of this.#lanes) {
      l.from.pause();
      if (!armed.silence) continue;
      const fromSilenced = (l.direction === "to-destination") === (armed.silence === "source");
      if (fromSilenced) {
        l.mute = true;
        l.held = [];
      } else l.deaf = true;
    }
    void (async () => {
      try {
        await armed.hook(e);
        armed.resolve(e);
      } catch (err) {
        armed.reject(err);
      } finally {
        this.#holding = false;
        this.#release();
      }
    })();
  }

  /** After a hook: delivers what was held, ends lanes whose side closed (or was silenced), resumes reading. */
  #release(): void {
    for (const lane of [...this.#lanes]) {
      while (lane.held.length && !this.#holding) this.#forward(lane, lane.held.shift()!);
      if (this.#holding) return; // another hook fired on held bytes; its release goes on
      if (lane.ended || lane.mute) this.#end(lane);
      if (lane.mute || !lane.to.writableNeedDrain) lane.from.resume(); // a muted side is read and dropped
    }
  }

  /** `lane.from` ended, closed or was silenced: once nothing is held, the other side reads to the end, then EOF. */
  #end(lane: Lane): void {
    if (this.#holding || lane.held.length) return; // after the hook, once delivered
    if (lane.ended) this.#lanes.delete(lane);
    // half-close: the other side keeps writing to the proxy, which records what it sends
    if (!lane.to.destroyed && !lane.to.writableEnded) lane.to.end();
  }
}
function matches(m: FrameMatch, e: FrameEvent): boolean {
  if ("index" in m) return m.index === e.index;
  return (
    m.type === e.type &&
    (m.direction === undefined || m.direction === e.direction) &&
    (m.occurrence ?? 1) === e.occurrence
  );
}
