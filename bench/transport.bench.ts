// Frames through Channel over loopback TCP, receiver in a child process: the transport's
// own cost, without encoding or applying pages.
//   Run: npx tsx bench/transport.bench.ts [--quick]
// Each run moves TOTAL bytes as 1 MiB PAGES frames (Channel.sendInPlace from kernel memory
// on one side, Channel.receive into kernel memory on the other). Rows:
//   raw socket   the same bytes as 1 MiB socket writes, counted by 'data' events (the
//                ceiling of bench/engine.bench.ts; Node allocates a buffer per read)
//   raw socket, read buffer   the same, read into one reusable 256 KiB buffer (net.Socket
//                onread): the real ceiling of a receiver that allocates nothing per read
//   before       the transport and channel data path of main a65727b: the socket transport
//                as it was (copied below, LegacySocketTransport) and Channel's plain
//                send/receive path (a transport without sendCopy/receiveInto)
//   after        src/transport/tcp.ts (pooled send buffers, frames cut into pooled buffers
//                or straight into the channel's arena, receive backpressure)
// Per side: wall MB/s, CPU seconds per GiB and minor page faults per GiB
// (process.resourceUsage().minorPageFault), median of RUNS runs after one warm-up run of
// each kind; the three kinds are interleaved run by run. Verified before it is timed:
// the receiver checks every frame (checksum, sequence, type) and hashes the first and
// last payload, which must equal the sender's.
import { spawn } from "node:child_process";
import { randomFillSync } from "node:crypto";
import net from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Channel } from "../src/engine/channel.js";
import { createKernel, type Kernel, type Transport, TransportError } from "../src/index.js";
import { connectTcp, TcpListener } from "../src/node.js";
import type { TcpTransport } from "../src/transport/tcp.js";
import {
  announcedFrameSize,
  DEFAULT_MAX_PAYLOAD,
  FRAME_HEADER_BYTES,
  FRAME_TRAILER_ROOM,
  FrameError,
  FrameType,
} from "../src/wire/frame.js";
import { FrameQueue } from "../src/transport/transport.js";
import { printTable, QUICK, round, target, writeResults, type Target } from "./harness.js";

const PAYLOAD = 1 << 20;
const TOTAL = QUICK ? 256 << 20 : 1 << 30;
const FRAMES = TOTAL / PAYLOAD;
const RUNS = QUICK ? 3 : 5;
const KINDS = ["raw socket", "raw socket, read buffer", "before", "after"] as const;
type Kind = (typeof KINDS)[number];

interface SideStats {
  seconds: number;
  cpuSeconds: number;
  minorFaults: number;
  bytes: number;
}
interface ReceiverStats extends SideStats {
  frames: number;
  firstHash: string;
  lastHash: string;
  /** TcpTransport only: frames written straight into the arena, receive-pool buffers allocated. */
  direct?: number;
  buffers?: number;
}

function sample(): { t: number; cpu: NodeJS.CpuUsage; faults: number } {
  return { t: performance.now(), cpu: process.cpuUsage(), faults: process.resourceUsage().minorPageFault };
}
function since(s: ReturnType<typeof sample>, bytes: number): SideStats {
  const cpu = process.cpuUsage(s.cpu);
  return {
    seconds: (performance.now() - s.t) / 1000,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    minorFaults: process.resourceUsage().minorPageFault - s.faults,
    bytes,
  };
}

// ---- the transport of main a65727b (src/transport/tcp.ts SocketTransport), for "before" ----

class LegacySocketTransport implements Transport {
  bytesSent = 0;
  bytesReceived = 0;
  readonly #socket: net.Socket;
  readonly #inbox = new FrameQueue();
  readonly #maxPayload = DEFAULT_MAX_PAYLOAD;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #need = FRAME_HEADER_BYTES;
  #headerPending = true;
  #closed = false;
  #writeError: TransportError | null = null;
  readonly #bufferBytes = 16 << 20;

  constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("error", (err) =>
      this.#inbox.fail(new TransportError("CONNECTION_LOST", `connection lost: ${err.message}`, { cause: err })),
    );
    socket.on("close", () => {
      if (this.#buffered > 0) this.#inbox.fail(new FrameError("FRAME_TRUNCATED", "connection closed inside a frame"));
      else this.#inbox.end();
    });
  }

  #onData(chunk: Buffer): void {
    this.bytesReceived += chunk.length;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    try {
      while (this.#buffered >= this.#need) {
        const all = this.#chunks.length === 1 ? this.#chunks[0] : Buffer.concat(this.#chunks, this.#buffered);
        this.#chunks = [all];
        if (this.#need === FRAME_HEADER_BYTES || this.#headerPending) {
          this.#headerPending = false;
          this.#need = announcedFrameSize(all.subarray(0, FRAME_HEADER_BYTES), this.#maxPayload);
          continue;
        }
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

  send(frame: Uint8Array): Promise<void> {
    if (this.#closed || this.#socket.destroyed)
      return Promise.reject(new TransportError("CONNECTION_CLOSED", "tcp: send on a closed connection"));
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
        else if (this.#socket.destroyed) reject(new TransportError("CONNECTION_LOST", "tcp: closed while sending"));
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
    this.#inbox.end();
  }
}

// ---- receiver (child process) -----------------------------------------------------------

/** Accepts connections one after another; prints one JSON line (ReceiverStats) per connection. */
async function receiver(kind: Kind): Promise<void> {
  const k = await createKernel({ shared: false });
  if (kind.startsWith("raw socket")) {
    const server = net.createServer({ pauseOnConnect: true }, (accepted) => {
      const s0 = sample();
      let bytes = 0;
      let socket = accepted;
      if (kind === "raw socket, read buffer") {
        // accepted sockets take no onread option: move the handle into one that does (as tcp.ts does)
        const shell = accepted as unknown as { _handle: object | null };
        const buffer = new Uint8Array(256 << 10);
        socket = new net.Socket({
          handle: shell._handle,
          onread: { buffer, callback: (n: number) => ((bytes += n), true) },
        } as net.SocketConstructorOpts);
        shell._handle = null;
      } else {
        socket.on("data", (d) => (bytes += d.length));
        socket.resume();
      }
      socket.on("end", () => {
        console.log(JSON.stringify({ ...since(s0, bytes), frames: 0, firstHash: "", lastHash: "" }));
        socket.end();
      });
    });
    server.listen(0, "127.0.0.1", () =>
      console.error(`listening on 127.0.0.1:${(server.address() as net.AddressInfo).port}`),
    );
    return;
  }
  if (kind === "before") {
    const server = net.createServer((socket) => void receiveFrames(k, new LegacySocketTransport(socket)));
    server.listen(0, "127.0.0.1", () =>
      console.error(`listening on 127.0.0.1:${(server.address() as net.AddressInfo).port}`),
    );
    return;
  }
  const listener = await TcpListener.listen("127.0.0.1", 0);
  console.error(`listening on 127.0.0.1:${listener.port}`);
  for (;;) await receiveFrames(k, await listener.accept());
}

async function receiveFrames(k: Kernel, transport: Transport): Promise<void> {
  const ch = new Channel(k, transport, null);
  const s0 = sample();
  let frames = 0;
  let bytes = 0;
  let firstHash = "";
  let lastHash = "";
  for (;;) {
    const f = await ch.receive();
    if (!f) break;
    if (f.type !== FrameType.PAGES) throw new Error(`frame ${frames}: type ${f.type}`);
    if (frames === 0) firstHash = k.hashPage(f.payload).toString(16);
    if (frames === FRAMES - 1) lastHash = k.hashPage(f.payload).toString(16);
    frames++;
    bytes += f.payload.length;
  }
  const stats: ReceiverStats = { ...since(s0, bytes), frames, firstHash, lastHash };
  if ("stats" in transport) {
    const t = (transport as TcpTransport).stats;
    stats.direct = t.direct;
    stats.buffers = t.receive.allocations;
  }
  ch.dispose();
  transport.close();
  console.log(JSON.stringify(stats));
}

// ---- sender (this process) --------------------------------------------------------------

interface Peer {
  port: number;
  next(): Promise<ReceiverStats>;
  stop(): void;
}

function startReceiver(kind: Kind): Promise<Peer> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", fileURLToPath(import.meta.url), "--receiver", kind, ...(QUICK ? ["--quick"] : [])],
    {
      stdio: ["pipe", "pipe", "pipe"], // the receiver exits when its stdin closes (this process ended)
      cwd: fileURLToPath(new URL("..", import.meta.url)),
    },
  );
  const lines: string[] = [];
  const waiting: Array<{ resolve: (line: string) => void; reject: (e: Error) => void }> = [];
  createInterface({ input: child.stdout }).on("line", (line) => {
    const w = waiting.shift();
    if (w) w.resolve(line);
    else lines.push(line);
  });
  let err = "";
  let stopping = false;
  process.once("exit", () => child.kill()); // also when the benchmark fails
  return new Promise((resolve, reject) => {
    child.on("exit", (code) => {
      if (stopping) return;
      const e = new Error(`${kind} receiver exited ${code}: ${err}`);
      for (const w of waiting.splice(0)) w.reject(e);
      reject(e);
    });
    child.stderr.on("data", (d) => {
      err += d;
      const m = /listening on [^:]+:(\d+)/.exec(err);
      if (m)
        resolve({
          port: Number(m[1]),
          next: () =>
            new Promise<string>((resolve, reject) => {
              const l = lines.shift();
              if (l !== undefined) resolve(l);
              else waiting.push({ resolve, reject });
            }).then((l) => JSON.parse(l) as ReceiverStats),
          stop: () => {
            stopping = true;
            child.kill();
          },
        });
    });
  });
}

async function sendRaw(port: number, chunk: Uint8Array): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1", async () => {
      s.setNoDelay(true);
      for (let sent = 0; sent < TOTAL; sent += chunk.length) {
        if (!s.write(chunk)) await new Promise((r) => s.once("drain", r));
      }
      s.end();
      resolve();
    });
    s.on("error", reject);
  });
}

function connectLegacy(port: number): Promise<Transport> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1", () => resolve(new LegacySocketTransport(s)));
    s.once("error", reject);
  });
}

/** Sends FRAMES frames; returns the send-pool buffers the transport allocated (TcpTransport). */
async function sendFrames(k: Kernel, transport: Transport, frame: Uint8Array): Promise<number | undefined> {
  const ch = new Channel(k, transport, null);
  for (let i = 0; i < FRAMES; i++) await ch.sendInPlace(FrameType.PAGES, frame, PAYLOAD);
  transport.close();
  return "stats" in transport ? (transport as TcpTransport).stats.send.allocations : undefined;
}

interface Run {
  sender: SideStats & { buffers?: number };
  receiver: ReceiverStats;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function main(): Promise<void> {
  const k = await createKernel({ shared: false });
  const region = k.alloc(FRAME_HEADER_BYTES + PAYLOAD + FRAME_TRAILER_ROOM, 64);
  randomFillSync(k.bytes(region));
  const payload = () => k.bytes(region).subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + PAYLOAD);
  const wantHash = k.hashPage(payload()).toString(16);
  const chunk = payload().slice();
  const peers = new Map<Kind, Peer>();
  for (const kind of KINDS) peers.set(kind, await startReceiver(kind));

  const runs = new Map<Kind, Run[]>(KINDS.map((kind) => [kind, []]));
  for (let i = 0; i <= RUNS; i++) {
    for (const kind of KINDS) {
      const peer = peers.get(kind)!;
      const s0 = sample();
      let buffers: number | undefined;
      if (kind.startsWith("raw socket")) await sendRaw(peer.port, chunk);
      else {
        const t = kind === "before" ? await connectLegacy(peer.port) : await connectTcp("127.0.0.1", peer.port);
        buffers = await sendFrames(k, t, k.bytes(region));
      }
      const receiver = await peer.next();
      const sender = { ...since(s0, TOTAL), buffers };
      if (kind.startsWith("raw socket")) {
        if (receiver.bytes !== TOTAL) throw new Error(`raw socket: received ${receiver.bytes} of ${TOTAL} bytes`);
      } else if (
        receiver.frames !== FRAMES ||
        receiver.bytes !== TOTAL ||
        receiver.firstHash !== wantHash ||
        receiver.lastHash !== wantHash
      ) {
        throw new Error(`${kind}: received ${JSON.stringify(receiver)}, want ${FRAMES} frames hashing ${wantHash}`);
      }
      if (i > 0) runs.get(kind)!.push({ sender, receiver });
      console.error(`${kind} run ${i}${i === 0 ? " (warm-up)" : ""}: ${round(sender.seconds, 3)} s`);
    }
  }

  for (const p of peers.values()) p.stop();

  const gib = TOTAL / 2 ** 30;
  const rows: Record<string, string | number>[] = [];
  const rates = new Map<Kind, number>();
  for (const kind of KINDS) {
    const rs = runs.get(kind)!;
    const m = (f: (r: Run) => number) => median(rs.map(f));
    const rate = TOTAL / m((r) => r.sender.seconds);
    rates.set(kind, rate);
    rows.push({
      path: kind,
      "MB/s": round(rate / 1e6, 0),
      "× raw (read buffer)": 0,
      "send CPU s/GiB": round(m((r) => r.sender.cpuSeconds) / gib, 3),
      "recv CPU s/GiB": round(m((r) => r.receiver.cpuSeconds) / gib, 3),
      "send faults/GiB": Math.round(m((r) => r.sender.minorFaults) / gib),
      "recv faults/GiB": Math.round(m((r) => r.receiver.minorFaults) / gib),
      "frames into arena":
        kind === "after" ? `${Math.round((100 * m((r) => r.receiver.direct ?? 0)) / FRAMES)} %` : "-",
      "pool buffers send/recv":
        kind === "after" ? `${m((r) => r.sender.buffers ?? 0)}/${m((r) => r.receiver.buffers ?? 0)}` : "-",
    });
  }
  const ceiling = rates.get("raw socket, read buffer")!;
  for (const r of rows) r["× raw (read buffer)"] = round(rates.get(r.path as Kind)! / ceiling, 2);
  const after = rows.find((r) => r.path === "after")!;
  const targets: Target[] = [
    target("after: × raw socket (read buffer)", rates.get("after")! / ceiling, ">=", 0.7),
    target("after: × before", rates.get("after")! / rates.get("before")!, ">=", 1.5),
    target("after: receive minor faults per GiB", after["recv faults/GiB"] as number, "<=", 5000, ""),
    target("after: send minor faults per GiB", after["send faults/GiB"] as number, "<=", 5000, ""),
  ];
  const file = writeResults("transport", rows, targets);
  console.log(
    `\ntransport benchmark: ${gib} GiB of ${PAYLOAD >> 20} MiB PAGES frames through Channel over loopback TCP, receiver in another process (median of ${RUNS} after a warm-up)`,
  );
  printTable(rows);
  console.log("");
  for (const t of targets) console.log(`${t.ok ? "met   " : "MISSED"} ${t.what}: ${t.measured} (target ${t.want})`);
  console.log(`\nwrote ${file}`);
}

const at = process.argv.indexOf("--receiver");
if (at >= 0) {
  process.stdin.on("end", () => process.exit(0)).resume();
  await receiver(process.argv[at + 1] as Kind);
} else {
  await main();
  process.exit(0);
}
