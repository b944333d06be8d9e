// TCP (and TLS) transport for Node: frames are cut out of the byte stream by the length
// in their header (frame.ts), which is checked before any payload is buffered.
//
//   socket ──read──► read buffer ──cut──► consumer's sink (a receiveInto waits: Channel's arena)
//                    (one, reused)   └──► pooled frame buffer ──queue──► receiveInto copies, gives back
//                                                                     └► receive hands over
//   Channel ──allocFrame──► pooled frame buffer ──send──► socket.write ──callback──► back to the pool
//
// Plain TCP reads into one reusable buffer per connection (net.Socket `onread`), so no
// buffer is allocated per read either; TLS sockets read through 'data' events (a fresh
// buffer per read, as Node allocates it). The receive queue is bounded: while more than
// `receiveBufferBytes` of frames wait for the consumer the socket is paused (the peer's
// sends then wait, as the kernel's socket buffers fill), and resumed below half of it.
import net from "node:net";
import tls from "node:tls";
import { DEFAULT_MAX_PAYLOAD, FrameError } from "../wire/frame.js";
import { FrameCutter } from "./frame-cutter.js";
import { FramePool, type FramePoolStats } from "./frame-pool.js";
import { FrameQueue, type FrameSink, TransportError, type Transport } from "./transport.js";

export interface TcpOptions {
  /** TLS options (key/cert on the listener, ca/servername on the client); plain TCP when absent. */
  tls?: tls.TlsOptions & tls.ConnectionOptions;
  /** Frames announcing more payload than this are rejected (FRAME_TOO_LARGE). */
  maxPayload?: number;
  /** Bytes of received frames that may wait for the consumer before the socket is paused (default 16 MiB). */
  receiveBufferBytes?: number;
  /** Bytes that may wait in the socket's send queue before send() waits for 'drain' (default 16 MiB). */
  sendBufferBytes?: number;
  /**
   * Bytes of the reusable buffer plain-TCP reads land in (default 256 KiB). 0: read
   * through 'data' events instead (a fresh buffer per read, as TLS always does).
   */
  readBufferBytes?: number;
}

/** Counters of a TCP transport's buffers (tests, benchmarks). */
export interface TcpTransportStats {
  /** The pool of allocFrame buffers (given back after socket.write). */
  send: FramePoolStats;
  /** The pool frames wait in when no receiveInto is waiting (given back by receiveInto). */
  receive: FramePoolStats;
  /** Frames written straight into a waiting receiveInto sink. */
  direct: number;
  /** Frames queued for the consumer, and their bytes, now. */
  queuedFrames: number;
  queuedBytes: number;
  /** Times the socket was paused because the consumer fell behind; true while it is. */
  pauses: number;
  paused: boolean;
  /** "buffer": reads into one reusable buffer (net.Socket onread); "data": 'data' events. */
  readMode: "buffer" | "data";
}

/** A TCP connection as a Transport, with its peer's address and a hard close. */
export interface TcpTransport extends Transport {
  /** "address:port" of the other end. */
  readonly peer: string;
  /** Closes at once, dropping anything not yet sent (for peers that are being refused). */
  destroy(): void;
  allocFrame(size: number): Uint8Array;
  sendBorrowed(frame: Uint8Array, release: () => void): Promise<void>;
  receiveInto(sink: FrameSink): Promise<number | null>;
  readonly stats: TcpTransportStats;
}

const DEFAULT_BUFFER_BYTES = 16 << 20;
const DEFAULT_READ_BUFFER_BYTES = 256 << 10;

/** The buffer a plain-TCP socket reads into, and where each read goes (set once the transport exists). */
class ReadBuffer {
  readonly buffer: Uint8Array;
  deliver: (buffer: Uint8Array, length: number) => void = () => {
    throw new Error("tcp: data before the transport was set up");
  };
  constructor(bytes: number) {
    this.buffer = new Uint8Array(bytes);
  }
  get onread(): net.OnReadOpts {
    return {
      buffer: this.buffer,
      callback: (n, buf) => {
        this.deliver(buf, n);
        return true; // pausing is done with socket.pause()
      },
    };
  }
}

function readBufferFor(options: TcpOptions): ReadBuffer | null {
  const bytes = options.readBufferBytes ?? DEFAULT_READ_BUFFER_BYTES;
  return options.tls || bytes <= 0 ? null : new ReadBuffer(bytes);
}

/** Connects to a listening pagewire peer. */
export function connectTcp(host: string, port: number, options: TcpOptions = {}): Promise<TcpTransport> {
  return new Promise((resolve, reject) => {
    const rb = readBufferFor(options);
    const socket: net.Socket = options.tls
      ? tls.connect({ host, port, ...options.tls }, () => done())
      : net.connect({ host, port, ...(rb ? { onread: rb.onread } : {}) }, () => done());
    const onError = (err: Error) =>
      reject(new TransportError("CONNECT_FAILED", `cannot connect to ${host}:${port}: ${err.message}`, { cause: err }));
    socket.once("error", onError);
    const done = () => {
      socket.off("error", onError);
      resolve(new SocketTransport(socket, options, rb));
    };
  });
}

/**
 * Moves an accepted connection's handle into a new net.Socket that reads into `rb`
 * (accepted sockets take no `onread` option; the server pauses them on connect, so
 * nothing was read yet). Uses the socket's `_handle`, stable since Node 0.x but not
 * documented: returns null when it is missing, and the caller reads with 'data' events.
 */
function adoptWithReadBuffer(accepted: net.Socket, rb: ReadBuffer): net.Socket | null {
  const shell = accepted as unknown as { _handle?: object | null };
  const handle = shell._handle;
  if (!handle || typeof handle !== "object") return null;
  let socket: net.Socket;
  try {
    socket = new net.Socket({
      handle,
      onread: rb.onread,
      readable: true,
      writable: true,
    } as net.SocketConstructorOpts & { handle: object });
  } catch {
    return null;
  }
  shell._handle = null;
  // the handle-less shell stays counted as the server's connection (maxConnections,
  // close()) until the connection closes
  socket.once("close", () => accepted.destroy());
  return socket;
}

/** A listening socket handing out one Transport per accepted connection. */
export class TcpListener {
  readonly server: net.Server;
  #pending: TcpTransport[] = [];
  #waiters: Array<(t: TcpTransport) => void> = [];

  private constructor(server: net.Server) {
    this.server = server;
  }

  static listen(host: string, port: number, options: TcpOptions = {}): Promise<TcpListener> {
    return new Promise((resolve, reject) => {
      let listener: TcpListener;
      const onSocket = (accepted: net.Socket) => {
        const rb = readBufferFor(options);
        const adopted = rb ? adoptWithReadBuffer(accepted, rb) : null;
        const t = new SocketTransport(adopted ?? accepted, options, adopted ? rb : null);
        const w = listener.#waiters.shift();
        if (w) w(t);
        else listener.#pending.push(t);
      };
      const server = options.tls
        ? tls.createServer(options.tls, onSocket)
        : net.createServer({ pauseOnConnect: true }, onSocket);
      listener = new TcpListener(server);
      server.once("error", (err) =>
        reject(new TransportError("LISTEN_FAILED", `cannot listen on ${host}:${port}: ${err.message}`, { cause: err })),
      );
      server.listen(port, host, () => resolve(listener));
    });
  }

  /** The bound port (useful with port 0). */
  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** The next accepted connection (after the TLS handshake with TLS). */
  accept(): Promise<TcpTransport> {
    const t = this.#pending.shift();
    if (t) return Promise.resolve(t);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Stops accepting connections (connections already accepted stay open). */
  close(): void {
    this.server.close();
  }
}

function poolBound(bufferBytes: number, maxPayload: number): number {
  return Math.ceil(bufferBytes * 1.5) + maxPayload;
}

/** How long close() waits for the peer to close its side before dropping the connection. */
const CLOSE_LINGER_MS = 5000;

class SocketTransport implements TcpTransport {
  bytesSent = 0;
  bytesReceived = 0;
  readonly peer: string;
  readonly #socket: net.Socket;
  readonly #inbox = new FrameQueue();
  readonly #maxPayload: number;
  readonly #sendBufferBytes: number;
  readonly #receiveBufferBytes: number;
  readonly #sendPool: FramePool;
  readonly #receivePool: FramePool;
  readonly #readMode: "buffer" | "data";
  readonly #cutter: FrameCutter;
  #pauses = 0;
  #paused = false;
  #closed = false;
  #writeError: TransportError | null = null;

  constructor(socket: net.Socket, options: TcpOptions, readBuffer: ReadBuffer | null) {
    this.#socket = socket;
    this.#maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    this.#sendBufferBytes = options.sendBufferBytes ?? DEFAULT_BUFFER_BYTES;
    this.#receiveBufferBytes = options.receiveBufferBytes ?? DEFAULT_BUFFER_BYTES;
    // in use at once: what the socket's queue holds, or the receive queue (the bound, plus
    // the frames of one read, plus one frame), in buffers up to 1.25 times a frame's size
    this.#sendPool = new FramePool({ maxFreeBytes: poolBound(this.#sendBufferBytes, this.#maxPayload) });
    this.#receivePool = new FramePool({ maxFreeBytes: poolBound(this.#receiveBufferBytes, this.#maxPayload) });
    this.#cutter = new FrameCutter(this.#inbox, this.#receivePool, this.#maxPayload);
    this.peer = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.setNoDelay(true);
    if (readBuffer) {
      this.#readMode = "buffer";
      readBuffer.deliver = (buf, n) => this.#onData(buf, n);
    } else {
      this.#readMode = "data";
      socket.on("data", (chunk: Buffer) => this.#onData(chunk, chunk.length));
      socket.resume(); // a listener's sockets start paused
    }
    socket.on("error", (err) =>
      this.#cutter.fail(new TransportError("CONNECTION_LOST", `connection lost: ${err.message}`, { cause: err })),
    );
    socket.on("close", () => {
      const partial = this.#cutter.partial;
      if (partial)
        this.#cutter.fail(
          new FrameError(
            "FRAME_TRUNCATED",
            `connection closed inside a frame (${partial.got} of ${partial.need} bytes received)`,
          ),
        );
      else this.#cutter.end();
    });
  }

  get stats(): TcpTransportStats {
    return {
      send: this.#sendPool.stats,
      receive: this.#receivePool.stats,
      direct: this.#cutter.direct,
      queuedFrames: this.#inbox.queuedFrames,
      queuedBytes: this.#inbox.queuedBytes,
      pauses: this.#pauses,
      paused: this.#paused,
      readMode: this.#readMode,
    };
  }

  /** Cuts frames out of `length` bytes of `chunk` (valid only during this call). */
  #onData(chunk: Uint8Array, length: number): void {
    if (this.#closed) return; // closed here: nothing more is delivered
    this.bytesReceived += length;
    try {
      this.#cutter.push(chunk, length);
    } catch (err) {
      this.#cutter.fail(err);
      this.#socket.destroy();
      return;
    }
    if (!this.#paused && this.#inbox.queuedBytes >= this.#receiveBufferBytes) this.#pause();
  }

  #pause(): void {
    this.#paused = true;
    this.#pauses++;
    this.#socket.pause();
    void this.#inbox.whenBelow(this.#receiveBufferBytes >> 1).then(() => {
      this.#paused = false;
      if (!this.#socket.destroyed) this.#socket.resume();
    });
  }

  allocFrame(size: number): Uint8Array {
    return this.#sendPool.acquire(size);
  }

  /**
   * Queues the frame on the socket. Resolves at once while less than `sendBufferBytes`
   * wait in the socket's user-space queue (frames keep flowing while the next ones are
   * encoded), else on 'drain'. Write errors surface on the next send or receive. A frame
   * from allocFrame goes back to the pool once the socket has written it.
   */
  send(frame: Uint8Array): Promise<void> {
    const pool = this.#sendPool;
    if (!pool.owns(frame)) return this.#write(frame, null);
    return this.#write(frame, () => pool.release(frame));
  }

  /** As `send`, without taking the frame: `release` runs once the socket is done with its bytes. */
  sendBorrowed(frame: Uint8Array, release: () => void): Promise<void> {
    return this.#write(frame, release);
  }

  /**
   * Queues the frame on the socket; `done` (if any) runs once, when the socket will read
   * the frame's bytes no more: written, failed, or refused here.
   */
  #write(frame: Uint8Array, done: (() => void) | null): Promise<void> {
    if (this.#closed || this.#socket.destroyed) {
      done?.();
      return Promise.reject(new TransportError("CONNECTION_CLOSED", "tcp: send on a closed connection"));
    }
    if (this.#writeError) {
      done?.();
      return Promise.reject(this.#writeError);
    }
    this.bytesSent += frame.length;
    let released = done === null;
    const queued = this.#socket.writableLength;
    this.#socket.write(frame, (err) => {
      if (!released) {
        released = true;
        done!(); // the socket is done with it (written, or failed)
      }
      if (err && !this.#writeError)
        this.#writeError = new TransportError("CONNECTION_LOST", `tcp send failed: ${err.message}`, { cause: err });
    });
    if (!released && this.#socket.writableLength <= queued) {
      // written at once (the stream finished the chunk before write() returned; its callback
      // only comes on a later tick): released now, or a sender that never yields to the
      // event loop would need a new buffer for every frame the kernel accepts at once
      released = true;
      done!();
    }
    if (this.#socket.writableLength < this.#sendBufferBytes) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const settle = () => {
        this.#socket.off("drain", settle);
        this.#socket.off("close", settle);
        if (this.#writeError) reject(this.#writeError);
        else if (this.#socket.destroyed)
          reject(new TransportError("CONNECTION_LOST", "tcp: connection closed while sending"));
        else resolve();
      };
      this.#socket.on("drain", settle);
      this.#socket.on("close", settle);
    });
  }

  receive(): Promise<Uint8Array | null> {
    return this.#inbox.next();
  }

  receiveInto(sink: FrameSink): Promise<number | null> {
    return this.#inbox.nextInto(sink);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.end();
    // a peer that never closes its side would otherwise hold the socket open forever
    const linger = setTimeout(() => this.#socket.destroy(), CLOSE_LINGER_MS).unref();
    this.#socket.once("close", () => clearTimeout(linger));
    this.#cutter.end();
  }

  destroy(): void {
    this.#closed = true;
    this.#socket.destroy();
    this.#cutter.end();
  }
}
