// TCP (and TLS) transport for Node: frames are split out of the byte stream by the
// length in their header (frame.ts), which is checked before any payload is buffered.
import net from "node:net";
import tls from "node:tls";
import { announcedFrameSize, DEFAULT_MAX_PAYLOAD, FRAME_HEADER_BYTES, FrameError } from "../wire/frame.js";
import { FrameQueue, TransportError, type Transport } from "./transport.js";

export interface TcpOptions {
  /** TLS options (key/cert on the listener, ca/servername on the client); plain TCP when absent. */
  tls?: tls.TlsOptions & tls.ConnectionOptions;
  /** Frames announcing more payload than this are rejected (FRAME_TOO_LARGE). */
  maxPayload?: number;
}

/** A TCP connection as a Transport, with its peer's address and a hard close. */
export interface TcpTransport extends Transport {
  /** "address:port" of the other end. */
  readonly peer: string;
  /** Closes at once, dropping anything not yet sent (for peers that are being refused). */
  destroy(): void;
}

/** Connects to a listening pagewire peer. */
export function connectTcp(host: string, port: number, options: TcpOptions = {}): Promise<TcpTransport> {
  return new Promise((resolve, reject) => {
    const socket: net.Socket = options.tls
      ? tls.connect({ host, port, ...options.tls }, () => done())
      : net.connect({ host, port }, () => done());
    const onError = (err: Error) =>
      reject(new TransportError("CONNECT_FAILED", `cannot connect to ${host}:${port}: ${err.message}`, { cause: err }));
    socket.once("error", onError);
    const done = () => {
      socket.off("error", onError);
      resolve(new SocketTransport(socket, options.maxPayload ?? DEFAULT_MAX_PAYLOAD));
    };
  });
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
    const maxPayload = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    return new Promise((resolve, reject) => {
      let listener: TcpListener;
      const onSocket = (socket: net.Socket) => {
        const t = new SocketTransport(socket, maxPayload);
        const w = listener.#waiters.shift();
        if (w) w(t);
        else listener.#pending.push(t);
      };
      const server = options.tls ? tls.createServer(options.tls, onSocket) : net.createServer(onSocket);
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

/** How long close() waits for the peer to close its side before dropping the connection. */
const CLOSE_LINGER_MS = 5000;

class SocketTransport implements TcpTransport {
  bytesSent = 0;
  bytesReceived = 0;
  readonly peer: string;
  readonly #socket: net.Socket;
  readonly #inbox = new FrameQueue();
  readonly #maxPayload: number;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #need = FRAME_HEADER_BYTES;
  /** True while #need counts only the next header (a frame can be as small as a header plus trailer). */
  #headerPending = true;
  #closed = false;
  #writeError: TransportError | null = null;
  readonly #bufferBytes: number;

  constructor(socket: net.Socket, maxPayload: number, bufferBytes = 16 << 20) {
    this.#socket = socket;
    this.#maxPayload = maxPayload;
    this.#bufferBytes = bufferBytes;
    this.peer = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("error", (err) =>
      this.#inbox.fail(new TransportError("CONNECTION_LOST", `connection lost: ${err.message}`, { cause: err })),
    );
    socket.on("close", () => {
      if (this.#buffered > 0)
        this.#inbox.fail(
          new FrameError(
            "FRAME_TRUNCATED",
            `connection closed inside a frame (${this.#buffered} of ${this.#need} bytes received)`,
          ),
        );
      else this.#inbox.end();
    });
  }

  #onData(chunk: Buffer): void {
    this.bytesReceived += chunk.length;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    try {
      // chunks are joined only once a whole header or frame is there (no quadratic copying)
      while (this.#buffered >= this.#need) {
        const all = this.#chunks.length === 1 ? this.#chunks[0] : Buffer.concat(this.#chunks, this.#buffered);
        this.#chunks = [all];
        if (this.#need === FRAME_HEADER_BYTES || this.#headerPending) {
          this.#headerPending = false;
          this.#need = announcedFrameSize(all.subarray(0, FRAME_HEADER_BYTES), this.#maxPayload);
          continue;
        }
        // copy the frame out so it owns its memory; keep the rest
        const frame = new Uint8Array(this.#need);
        frame.set(all.subarray(0, this.#need));
        const rest = all.subarray(this.#need);
        this.#chunks = rest.length ? [rest] : [];
        this.#buffered = rest.length;
        this.#need = FRAME_HEADER_BYTES;
        this.#headerPending = true;
        this.#inbox.push(frame);
      }
    } catch (err) {
      this.#inbox.fail(err);
      this.#socket.destroy();
    }
  }

  /**
   * Queues the frame on the socket. Resolves at once while less than `bufferBytes` wait
   * in the socket's user-space queue (frames keep flowing while the next ones are
   * encoded), else on 'drain'. Write errors surface on the next send or receive.
   */
  send(frame: Uint8Array): Promise<void> {
    if (this.#closed || this.#socket.destroyed) {
      return Promise.reject(new TransportError("CONNECTION_CLOSED", "tcp: send on a closed connection"));
    }
    if (this.#writeError) return Promise.reject(this.#writeError);
    this.bytesSent += frame.length;
    this.#socket.write(frame, (err) => {
      if (err && !this.#writeError)
        this.#writeError = new TransportError("CONNECTION_LOST", `tcp send failed: ${err.message}`, { cause: err });
    });
    if (this.#socket.writableLength < this.#bufferBytes) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        this.#socket.off("drain", done);
        this.#socket.off("close", done);
        if (this.#writeError) reject(this.#writeError);
        else if (this.#socket.destroyed)
          reject(new TransportError("CONNECTION_LOST", "tcp: connection closed while sending"));
        else resolve();
      };
      this.#socket.on("drain", done);
      this.#socket.on("close", done);
    });
  }

  receive(): Promise<Uint8Array | null> {
    return this.#inbox.next();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.end();
    // a peer that never closes its side would otherwise hold the socket open forever
    const linger = setTimeout(() => this.#socket.destroy(), CLOSE_LINGER_MS).unref();
    this.#socket.once("close", () => clearTimeout(linger));
    this.#inbox.end();
  }

  destroy(): void {
    this.#closed = true;
    this.#socket.destroy();
    this.#inbox.end();
  }
}
