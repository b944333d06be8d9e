// A TCP proxy on 127.0.0.1 between a migration source and the destination's listener, for
// tests that lose the connection on a real socket:
//
//   source ──connect──► proxy.port ══ forwards both ways ══► target (TcpListener.port)
//                         │
//                         ├─ cutAfter(n): once n more bytes went source → destination, every
//                         │  open connection is destroyed on both sides (the chunk that
//                         │  crosses the n-th byte is written only up to it, so the cut
//                         │  usually falls inside a frame; destroy may drop what is queued)
//                         ├─ cut(): the same, now
//                         └─ refuse(): connections made from now on are reset at once
//
// Connections made after a cut pass through as the first did (a reconnecting source goes
// through the proxy too). Flow control is end to end: a side that is not reading stalls the
// other (pause/resume on the sockets), so the proxy never buffers much.
import net from "node:net";

export interface ProxyCut {
  /** Bytes forwarded source → destination over all connections when the cut struck. */
  atBytes: number;
  /** Connections destroyed by it (both sockets each). */
  connections: number;
  /** What `onCut` returned (e.g. the destination's state at that instant). */
  note: unknown;
}

export interface TcpProxyOptions {
  /** Called synchronously on each accepted (not refused) connection, with its 1-based number. */
  onConnect?: (n: number) => void;
  /** Called synchronously as a cut strikes, before the sockets are destroyed; its value is kept in the cut's `note`. */
  onCut?: () => unknown;
}

interface Pipe {
  n: number;
  client: net.Socket;
  upstream: net.Socket;
  /** Source → destination bytes forwarded on this connection. */
  forwarded: number;
}

export class TcpProxy {
  readonly server: net.Server;
  readonly #target: { host: string; port: number };
  readonly #o: TcpProxyOptions;
  readonly #open = new Set<Pipe>();
  readonly #sockets = new Set<net.Socket>();
  #budget = Infinity; // source → destination bytes left before the armed cut
  #armed: ((cut: ProxyCut) => void) | null = null;
  #refusing = false;
  #closed = false;
  /** Connections accepted and forwarded. */
  connections = 0;
  /** Connections reset because the proxy was refusing. */
  refused = 0;
  /** Source → destination bytes forwarded, all connections. */
  bytesForwarded = 0;
  /** Source → destination bytes per connection, in connection order. */
  readonly perConnection: number[] = [];
  readonly cuts: ProxyCut[] = [];

  private constructor(server: net.Server, target: { host: string; port: number }, o: TcpProxyOptions) {
    this.server = server;
    this.#target = target;
    this.#o = o;
  }

  /** Listens on 127.0.0.1 (a free port) and forwards to 127.0.0.1:`targetPort`. */
  static start(targetPort: number, o: TcpProxyOptions = {}): Promise<TcpProxy> {
    return new Promise((resolve, reject) => {
      let proxy: TcpProxy;
      const server = net.createServer((socket) => proxy.#onConnection(socket));
      proxy = new TcpProxy(server, { host: "127.0.0.1", port: targetPort }, o);
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve(proxy));
    });
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Connections open right now. */
  get openConnections(): number {
    return this.#open.size;
  }

  /**
   * Arms a cut after `bytes` more bytes forwarded source → destination (counted over every
   * connection from now on); resolves when it struck. Replaces a cut armed before.
   */
  cutAfter(bytes: number): Promise<ProxyCut> {
    if (!(bytes >= 0)) throw new RangeError(`cutAfter: bytes must be ≥ 0, got ${bytes}`);
    return new Promise((resolve) => {
      this.#budget = bytes;
      this.#armed = resolve;
      if (bytes === 0) this.cut();
    });
  }

  /** Destroys every open connection now (both sockets). */
  cut(): ProxyCut {
    const cut: ProxyCut = { atBytes: this.bytesForwarded, connections: this.#open.size, note: this.#o.onCut?.() };
    for (const p of [...this.#open]) this.#drop(p);
    this.cuts.push(cut);
    const armed = this.#armed;
    this.#armed = null;
    this.#budget = Infinity;
    armed?.(cut);
    return cut;
  }

  /** From now on, new connections are reset as soon as they are accepted. */
  refuse(): void {
    this.#refusing = true;
  }

  /** Stops listening and destroys every connection; resolves once the server is closed. */
  close(): Promise<void> {
    this.#closed = true;
    for (const p of [...this.#open]) this.#drop(p);
    for (const s of this.#sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  #track(s: net.Socket): void {
    this.#sockets.add(s);
    s.once("close", () => this.#sockets.delete(s));
    s.on("error", () => {}); // a reset peer: the close that follows ends the pipe
  }

  #onConnection(client: net.Socket): void {
    this.#track(client);
    if (this.#refusing || this.#closed) {
      this.refused++;
      client.destroy();
      return;
    }
    client.pause(); // nothing is read until the upstream is there
    const upstream = net.connect(this.#target);
    this.#track(upstream);
    const pipe: Pipe = { n: ++this.connections, client, upstream, forwarded: 0 };
    this.perConnection.push(0);
    this.#open.add(pipe);
    this.#o.onConnect?.(pipe.n);
    const end = () => this.#drop(pipe);
    client.once("close", end);
    upstream.once("close", end);
    upstream.once("connect", () => {
      if (!this.#open.has(pipe)) return;
      client.on("data", (chunk: Buffer) => this.#forward(pipe, chunk));
      upstream.on("data", (chunk: Buffer) => {
        if (!client.write(chunk)) {
          upstream.pause();
          client.once("drain", () => upstream.resume());
        }
      });
      client.resume();
    });
  }

  /** Source → destination, counted, and cut at the armed byte. */
  #forward(pipe: Pipe, chunk: Buffer): void {
    if (!this.#open.has(pipe)) return;
    const cutting = chunk.length >= this.#budget;
    const part = cutting ? chunk.subarray(0, this.#budget) : chunk;
    this.#budget -= part.length;
    this.bytesForwarded += part.length;
    pipe.forwarded += part.length;
    this.perConnection[pipe.n - 1] = pipe.forwarded;
    const flowing = part.length === 0 || pipe.upstream.write(part);
    if (cutting) {
      this.cut();
      return;
    }
    if (!flowing) {
      pipe.client.pause();
      pipe.upstream.once("drain", () => pipe.client.resume());
    }
  }

  #drop(pipe: Pipe): void {
    if (!this.#open.delete(pipe)) return;
    pipe.client.destroy();
    pipe.upstream.destroy();
  }
}
