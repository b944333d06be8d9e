// Whole migrations of a 1 GiB guest, against the plain socket moving the same bytes in the
// same run. Run: npm run build && npx tsx bench/engine.bench.ts [--quick]
//
// Ceilings: the raw socket (the receiver reads into one reusable buffer and discards), the
// raw socket into fresh memory (the receiver copies every byte into one fresh guest-sized
// buffer: a destination must, and first touches of fresh memory are expensive on VMs),
// memcpy into fresh and into touched memory in this process.
// pagewire: the destination in another process over loopback TCP, with 0 data channels
// (pages on the control connection, encoded on the main thread) and 1, 2, 4 channels (one
// Worker and one TCP connection each, both sides), with the destination's guest RAM fresh
// (allocated at HELLO) and prepared (allocated and touched before the source connects, as
// a host prepares RAM for an incoming guest); then the channel scaling with the destination
// in this process (MessagePort channels). Guests: incompressible pages, the
// idle recording tiled to the guest size, and a live workload (a Worker guest writing
// 16384 hot pages while the migration runs). Effective throughput = guest bytes / migration
// seconds. CPU seconds per GiB per side count every thread of the process; RSS is the
// process's high-water mark. With no data channels and prepared RAM, each run alternates
// with one whose page frames are copied out of kernel memory into the transport's buffers
// (the transport hides sendBorrowed), as before frames were lent: what lending saves.
//   --channels 0,2: only these channel counts (prints, writes no results file)
import { spawn } from "node:child_process";
import { randomFillSync } from "node:crypto";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { MessageChannel } from "node:worker_threads";
import { fileURLToPath } from "node:url";
import {
  createKernel,
  MigrationDestination,
  MigrationSource,
  PAGE_SIZE,
  WasmGuestMemory,
  type Kernel,
} from "../src/index.js";
import { connectTcp, loadRecording } from "../src/node.js";
import type { MessagePortLike } from "../src/transport/message-port.js";
import type { Transport } from "../src/transport/transport.js";
import { createInProcessPair } from "../src/transport/in-process.js";
import { startListeningProcess, type ListeningProcess } from "../test/support/listening-process.js";
import { startWorkerGuest } from "../test/support/worker-guest.js";
import { printTable, printTargets, QUICK, round, target, writeResults, type Target } from "./harness.js";

const GUEST_BYTES = QUICK ? 128 << 20 : 1 << 30;
const PAGES = GUEST_BYTES / PAGE_SIZE;
const RUNS = QUICK ? 1 : 3;
const GIB = GUEST_BYTES / 2 ** 30;
const channelsArg = process.argv.indexOf("--channels");
const CHANNELS = channelsArg > 0 ? process.argv[channelsArg + 1].split(",").map(Number) : [0, 1, 2, 4];
const benchSupport = fileURLToPath(new URL("./support/", import.meta.url));
const testSupport = fileURLToPath(new URL("../test/support/", import.meta.url));

interface SideStats {
  seconds: number;
  cpuSeconds: number;
  maxRssMiB: number;
  bytes: number;
}

function cpuSince(c0: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
}

/** GUEST_BYTES through a plain socket (1 MiB writes, honouring backpressure) to a receiver reading into one reusable buffer. */
async function rawSocket(store: boolean): Promise<{ rx: SideStats; tx: SideStats }> {
  const net = await import("node:net");
  const chunk = new Uint8Array(1 << 20);
  randomFillSync(chunk);
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const connected = new Promise<import("node:net").Socket>((r) => server.once("connection", r));
  const child = spawn(
    process.execPath,
    [benchSupport + "raw-receiver.mjs", String(port), ...(store ? ["--store", String(GUEST_BYTES)] : [])],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  const exited = new Promise<void>((r) => child.on("exit", () => r()));
  const s = await connected;
  server.close();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  for (let sent = 0; sent < GUEST_BYTES; sent += chunk.length) {
    if (!s.write(chunk)) await new Promise((r) => s.once("drain", r));
  }
  s.end();
  await new Promise((r) => s.on("close", r));
  const tx = {
    seconds: (performance.now() - t0) / 1000,
    cpuSeconds: cpuSince(cpu0),
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
    bytes: GUEST_BYTES,
  };
  await exited;
  const rx = JSON.parse(out) as SideStats;
  if (rx.bytes !== GUEST_BYTES) throw new Error(`raw socket: received ${rx.bytes} bytes, sent ${GUEST_BYTES}`);
  return { rx, tx };
}

/** memcpy of the guest's bytes into fresh memory (first touch) and again (touched), seconds each. */
function memcpyCeilings(): { fresh: number; touched: number } {
  const src = new Uint8Array(GUEST_BYTES).fill(0x5a);
  const dst = new Uint8Array(GUEST_BYTES);
  let t = performance.now();
  dst.set(src);
  const fresh = (performance.now() - t) / 1000;
  t = performance.now();
  dst.set(src);
  const touched = (performance.now() - t) / 1000;
  if (dst[GUEST_BYTES - 1] !== 0x5a) throw new Error("memcpy ceiling: copy incomplete");
  return { fresh, touched };
}

type GuestKind = "incompressible" | "idle recording tiled" | "live workload";

function fill(kind: GuestKind, mem: WasmGuestMemory): void {
  const b = mem.bytes();
  if (kind === "idle recording tiled") {
    const base = loadRecording("idle").base;
    for (let o = 0; o < b.length; o += base.length) b.set(base.subarray(0, Math.min(base.length, b.length - o)), o);
    collectGarbage(); // the recording's buffers are garbage now: not part of the migrations' RSS
  } else for (let o = 0; o < b.length; o += 1 << 16) randomFillSync(b.subarray(o, o + (1 << 16)));
}

/** A full garbage collection (V8's gc(), exposed for this call). */
function collectGarbage(): void {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}

/** The source process's RSS high-water over the migrations (sampled while they run: the process's own maxRSS also counts loading the recordings). */
let sourceRssHigh = 0;

/** Samples this process's RSS every 20 ms until the returned stop is called; the max goes into sourceRssHigh and the result. */
function sampleRss(): () => number {
  let high = process.memoryUsage.rss();
  const timer = setInterval(() => (high = Math.max(high, process.memoryUsage.rss())), 20);
  return () => {
    clearInterval(timer);
    high = Math.max(high, process.memoryUsage.rss());
    sourceRssHigh = Math.max(sourceRssHigh, high);
    return high / 2 ** 20;
  };
}

interface Run {
  seconds: number;
  cpuSeconds: number;
  /** The source process's RSS high-water during this migration, MiB. */
  rssMiB: number;
  rx: SideStats | null;
  sent: number;
  rounds: number;
  channels: number;
}

/** `t` without sendBorrowed: the source copies each page frame out of kernel memory before sending it. */
function withoutLending(t: Transport): Transport {
  return {
    send: (frame) => t.send(frame),
    allocFrame: t.allocFrame?.bind(t),
    receive: () => t.receive(),
    receiveInto: t.receiveInto?.bind(t),
    close: () => t.close(),
    get bytesSent() {
      return t.bytesSent;
    },
    get bytesReceived() {
      return t.bytesReceived;
    },
  };
}

/** One migration of `mem`: destination over TCP in another process, or in this process over MessagePorts. */
async function migrate(
  mem: WasmGuestMemory,
  live: boolean,
  channels: number,
  where: "tcp" | "in-process",
  prefault = false,
  copyFrames = false,
): Promise<Run> {
  const k = mem.kernel;
  const guest = live ? startWorkerGuest(mem, { hotPages: 16384, seed: 7 }) : null;
  if (guest) await guest.running;
  let transport;
  let peer: ListeningProcess<SideStats> | null = null;
  let destination: Promise<unknown> | null = null;
  let ports: MessagePortLike[] | undefined;
  if (where === "tcp") {
    peer = await startListeningProcess<SideStats>(testSupport + "engine-receiver.mjs", [
      "--channels",
      String(channels),
      ...(prefault ? ["--prefault", String(PAGES)] : []),
    ]);
    transport = await connectTcp("127.0.0.1", peer.port);
    if (copyFrames) transport = withoutLending(transport);
  } else {
    const [a, b] = createInProcessPair();
    transport = a;
    const pairs = Array.from({ length: channels }, () => new MessageChannel());
    ports = pairs.map((p) => p.port1 as unknown as MessagePortLike);
    destinationKernel ??= await createKernel({ shared: true });
    const kd = destinationKernel;
    let dst: WasmGuestMemory | null = null;
    destination = new MigrationDestination({
      kernel: kd,
      transport: b,
      memory: (pages) => (dst = new WasmGuestMemory(kd, pages, { shared: true })),
      channels: { ports: pairs.map((p) => p.port2 as unknown as MessagePortLike) },
    })
      .receive()
      .finally(() => (dst as WasmGuestMemory | null)?.dispose());
  }
  const stopRss = sampleRss();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const source = new MigrationSource({
    kernel: k,
    memory: mem,
    dirtyLog: mem.dirtyLog(),
    transport,
    mode: "precopy",
    maxRounds: 10,
    onPause: () => guest?.pause(),
    ...(channels > 0 ? { channels: ports ? { ports } : { count: channels, tcp: { host: "127.0.0.1" } } } : {}),
  });
  const report = await source.migrate();
  await destination;
  const seconds = (performance.now() - t0) / 1000;
  const cpuSeconds = cpuSince(cpu0);
  const rssMiB = stopRss();
  const rx = peer ? await peer.result : null;
  if (guest) await guest.terminate();
  if (report.status !== "completed") throw new Error("migration did not complete");
  if (report.channels !== channels) throw new Error(`asked for ${channels} channels, got ${report.channels}`);
  return { seconds, cpuSeconds, rssMiB, rx, sent: report.ram.transferred, rounds: report.rounds.length, channels };
}

/** The in-process destination's kernel, made once (its memory is reused from run to run). */
let destinationKernel: Kernel | null = null;

function median<T>(xs: T[], key: (x: T) => number): T {
  return [...xs].sort((a, b) => key(a) - key(b))[xs.length >> 1];
}

async function main() {
  const rows: Record<string, string | number>[] = [];
  const targets: Target[] = [];
  await rawSocket(false); // warm-up
  const raws = [];
  const rawsFresh = [];
  for (let i = 0; i < RUNS; i++) {
    raws.push(await rawSocket(false));
    rawsFresh.push(await rawSocket(true));
  }
  const raw = median(raws, (r) => r.tx.seconds);
  const rawFresh = median(rawsFresh, (r) => r.tx.seconds);
  const rawRate = GUEST_BYTES / raw.tx.seconds;
  const rawFreshRate = GUEST_BYTES / rawFresh.tx.seconds;
  const ceilingRow = (name: string, r: { rx: SideStats; tx: SideStats }) => ({
    guest: name,
    channels: "-",
    "MB/s": round(GUEST_BYTES / r.tx.seconds / 1e6, 0),
    "× raw": round(GUEST_BYTES / r.tx.seconds / rawRate, 2),
    "× raw+fresh": round(GUEST_BYTES / r.tx.seconds / rawFreshRate, 2),
    "MiB sent": round(GUEST_BYTES / 2 ** 20, 1),
    rounds: "-",
    "src CPU s/GiB": round(r.tx.cpuSeconds / GIB, 2),
    "dst CPU s/GiB": round(r.rx.cpuSeconds / GIB, 2),
    "src RSS MiB": "-",
    "dst RSS MiB": round(r.rx.maxRssMiB, 0),
  });
  rows.push(ceilingRow("raw socket (ceiling)", raw));
  rows.push(ceilingRow("raw socket into fresh memory (ceiling)", rawFresh));
  const k: Kernel = await createKernel({ shared: true });
  const best: Record<string, number> = {};
  const leastCpu: Record<string, number> = {};
  const add = (kind: string, where: string, runs: Run[]) => {
    const m = median(runs, (r) => r.seconds);
    const rate = GUEST_BYTES / m.seconds;
    const key = `${kind} ${where}`;
    if (!(best[key] > rate / rawRate)) best[key] = rate / rawRate;
    rows.push({
      guest: `${kind} (${where})`,
      channels: m.channels,
      "MB/s": round(rate / 1e6, 0),
      "× raw": round(rate / rawRate, 2),
      "× raw+fresh": round(rate / rawFreshRate, 2),
      "MiB sent": round(m.sent / 2 ** 20, 1),
      rounds: m.rounds,
      "src CPU s/GiB": round(m.cpuSeconds / GIB, 2),
      "dst CPU s/GiB": m.rx ? round(m.rx.cpuSeconds / GIB, 2) : "(same process)",
      "src RSS MiB": m.rx ? round(Math.max(...runs.map((r) => r.rssMiB)), 0) : "-",
      "dst RSS MiB": m.rx ? round(m.rx.maxRssMiB, 0) : "-",
    });
    return m;
  };
  for (const kind of ["incompressible", "idle recording tiled", "live workload"] as GuestKind[]) {
    const mem = new WasmGuestMemory(k, PAGES, { shared: true });
    fill(kind, mem);
    await migrate(mem, false, 1, "tcp"); // warm-up: workers, kernels, sockets
    for (const channels of CHANNELS) {
      const runs: Run[] = [];
      for (let i = 0; i < RUNS; i++) runs.push(await migrate(mem, kind === "live workload", channels, "tcp"));
      const m = add(kind, "TCP, destination process", runs);
      let prepared: Run[] | null = null;
      if (kind !== "live workload") {
        prepared = [];
        const copied: Run[] = [];
        for (let i = 0; i < RUNS; i++) {
          prepared.push(await migrate(mem, false, channels, "tcp", true));
          if (channels === 0) copied.push(await migrate(mem, false, channels, "tcp", true, true));
        }
        add(kind, "TCP, destination RAM prepared", prepared);
        if (copied.length) add(kind, "TCP, destination RAM prepared, frames copied out", copied);
      }
      const cpu = (side: string, seconds: number) => {
        const key = `${kind} ${side}`;
        leastCpu[key] = Math.min(leastCpu[key] ?? Infinity, seconds / GIB);
      };
      cpu("source", m.cpuSeconds);
      cpu("destination, fresh RAM", m.rx!.cpuSeconds);
      if (prepared) {
        const p = median(prepared, (r) => r.seconds);
        cpu("source", p.cpuSeconds);
        cpu("destination, RAM prepared", p.rx!.cpuSeconds);
      }
    }
    mem.dispose();
  }
  const sourceRss = sourceRssHigh / 2 ** 20; // over the TCP runs (the in-process destinations come after)
  {
    const mem = new WasmGuestMemory(k, PAGES, { shared: true });
    fill("incompressible", mem);
    for (const channels of CHANNELS.filter((c) => c > 0)) {
      const runs: Run[] = [];
      for (let i = 0; i < RUNS; i++) runs.push(await migrate(mem, false, channels, "in-process"));
      add("incompressible", "destination in this process", runs);
    }
    mem.dispose();
  }
  const mc = memcpyCeilings();
  rows.push({
    guest: `memcpy in process: fresh ${round(GUEST_BYTES / mc.fresh / 1e6, 0)} MB/s, touched ${round(GUEST_BYTES / mc.touched / 1e6, 0)} MB/s`,
  });

  targets.unshift(
    target(
      "incompressible: × raw socket (best channel count, TCP)",
      best["incompressible TCP, destination process"],
      ">=",
      0.5,
    ),
    target(
      "incompressible, destination RAM prepared: × raw socket (best channel count, TCP)",
      best["incompressible TCP, destination RAM prepared"],
      ">=",
      0.5,
    ),
    target(
      "idle recording: effective × raw socket (best, TCP)",
      best["idle recording tiled TCP, destination process"],
      ">=",
      3,
    ),
    target(
      "idle recording, destination RAM prepared: effective × raw socket (best, TCP)",
      best["idle recording tiled TCP, destination RAM prepared"],
      ">=",
      3,
    ),
    target("source RSS high-water over the TCP runs, MiB", sourceRss, "<=", GUEST_BYTES / 2 ** 20 + 256, " MiB"),
    target(
      "incompressible: source CPU s/GiB (least over channel counts)",
      leastCpu["incompressible source"],
      "<=",
      0.5,
      " s",
    ),
    target(
      "incompressible: destination CPU s/GiB, RAM prepared (least)",
      leastCpu["incompressible destination, RAM prepared"],
      "<=",
      0.5,
      " s",
    ),
    target(
      "incompressible: destination CPU s/GiB, fresh RAM (least)",
      leastCpu["incompressible destination, fresh RAM"],
      "<=",
      0.5,
      " s",
    ),
    target("idle recording: source CPU s/GiB (least)", leastCpu["idle recording tiled source"], "<=", 0.2, " s"),
    target(
      "idle recording: destination CPU s/GiB, RAM prepared (least)",
      leastCpu["idle recording tiled destination, RAM prepared"],
      "<=",
      0.2,
      " s",
    ),
  );
  if (channelsArg > 0) {
    printTable(rows);
    printTargets(targets);
    return; // a partial run: no results file
  }
  const file = writeResults("engine", rows, targets);
  console.log(
    `\nengine benchmark: ${GIB} GiB guest over loopback TCP (${QUICK ? "quick" : `median of ${RUNS}`}); × raw+fresh: against the socket whose receiver stores into fresh memory`,
  );
  printTable(rows);
  console.log("");
  printTargets(targets);
  console.log(`\nwrote ${file}`);
}

await main();
