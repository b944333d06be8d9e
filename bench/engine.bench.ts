// Whole migrations over loopback TCP to a destination in another process, against a
// plain socket sender/receiver moving the same number of bytes in the same run.
//   Run: npm run build && npx tsx bench/engine.bench.ts [--quick]
// Guests: incompressible pages, the idle recording tiled to the guest size, and a live
// workload (a Worker guest writing while the migration runs). Reports effective
// throughput (guest bytes / migration seconds) as a ratio to the raw socket, CPU seconds
// per GiB and the memory high-water mark of both sides.
import { spawn } from "node:child_process";
import { randomFillSync } from "node:crypto";
import { fileURLToPath } from "node:url";
import { createKernel, MigrationSource, PAGE_SIZE, WasmGuestMemory } from "../src/index.js";
import { connectTcp, loadRecording } from "../src/node.js";
import { startWorkerGuest } from "../test/support/worker-guest.js";
import { printTable, printTargets, QUICK, round, target, writeResults, type Target } from "./harness.js";

const GUEST_BYTES = QUICK ? 128 << 20 : 1 << 30;
const PAGES = GUEST_BYTES / PAGE_SIZE;
const RUNS = QUICK ? 1 : 3;
const here = fileURLToPath(new URL("./support/", import.meta.url));

interface SideStats {
  seconds: number;
  cpuSeconds: number;
  maxRssMiB: number;
  bytes: number;
}

/** Starts a helper process that prints "listening on host:port" on stderr and one JSON line on stdout at the end. */
function startPeer(script: string): Promise<{ port: number; result: Promise<SideStats> }> {
  const child = spawn(process.execPath, [here + script], {
    stdio: ["ignore", "pipe", "pipe"],
    cwd: fileURLToPath(new URL("..", import.meta.url)),
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  const result = new Promise<SideStats>((resolve, reject) =>
    child.on("exit", (code) =>
      code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`${script} exited ${code}: ${err}`)),
    ),
  );
  return new Promise((resolve, reject) => {
    child.stderr.on("data", (d) => {
      err += d;
      const m = /listening on [^:]+:(\d+)/.exec(err);
      if (m) resolve({ port: Number(m[1]), result });
    });
    child.on("error", reject);
  });
}

/** The ceiling: GUEST_BYTES through a plain socket, 1 MiB writes, honouring backpressure. */
async function rawSocket(): Promise<SideStats & { sender: SideStats }> {
  const peer = await startPeer("raw-receiver.mjs");
  const net = await import("node:net");
  const chunk = new Uint8Array(1 << 20);
  randomFillSync(chunk);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await new Promise<void>((resolve, reject) => {
    const s = net.connect(peer.port, "127.0.0.1", async () => {
      for (let sent = 0; sent < GUEST_BYTES; sent += chunk.length) {
        if (!s.write(chunk)) await new Promise((r) => s.once("drain", r));
      }
      s.end();
    });
    s.on("close", () => resolve());
    s.on("error", reject);
  });
  const cpu = process.cpuUsage(cpu0);
  const rx = await peer.result;
  if (rx.bytes !== GUEST_BYTES) throw new Error(`raw socket: received ${rx.bytes} bytes, sent ${GUEST_BYTES}`);
  return {
    ...rx,
    sender: {
      seconds: (performance.now() - t0) / 1000,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      maxRssMiB: process.resourceUsage().maxRSS / 1024,
      bytes: GUEST_BYTES,
    },
  };
}

type Fill = (mem: WasmGuestMemory) => void;

const fills: Record<string, Fill> = {
  incompressible: (mem) => {
    const b = mem.bytes();
    for (let o = 0; o < b.length; o += 1 << 16) randomFillSync(b.subarray(o, o + (1 << 16)));
  },
  "idle recording tiled": (() => {
    let base: Uint8Array | null = null;
    return (mem: WasmGuestMemory) => {
      base ??= loadRecording("idle").base;
      const b = mem.bytes();
      for (let o = 0; o < b.length; o += base.length) b.set(base.subarray(0, Math.min(base.length, b.length - o)), o);
    };
  })(),
};

async function migrate(kind: string, mem: WasmGuestMemory, live: boolean) {
  const peer = await startPeer("engine-receiver.mjs");
  const guest = live ? startWorkerGuest(mem, { hotPages: 16384, seed: 7 }) : null;
  if (guest) while (guest.writes < 1000) await new Promise((r) => setTimeout(r, 2));
  const transport = await connectTcp("127.0.0.1", peer.port);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const source = new MigrationSource({
    kernel: mem.kernel,
    memory: mem,
    dirtyLog: mem.dirtyLog(),
    transport,
    mode: "precopy",
    maxRounds: 10,
    onPause: () => guest?.pause(),
  });
  const report = await source.migrate();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const rx = await peer.result;
  if (guest) await guest.exited;
  return { kind, report, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, rx };
}

function median<T>(xs: T[], key: (x: T) => number): T {
  return [...xs].sort((a, b) => key(a) - key(b))[xs.length >> 1];
}

async function main() {
  const rows: Record<string, string | number>[] = [];
  const targets: Target[] = [];
  const gib = GUEST_BYTES / 2 ** 30;
  // warm-up: one small raw transfer and kernel load
  const raws = [];
  for (let i = 0; i < RUNS; i++) raws.push(await rawSocket());
  const raw = median(raws, (r) => r.seconds);
  const rawRate = GUEST_BYTES / raw.seconds;
  rows.push({
    guest: "raw socket (ceiling)",
    "MB/s": round(rawRate / 1e6, 0),
    "× raw": 1,
    "MiB sent": round(GUEST_BYTES / 2 ** 20, 1),
    rounds: "-",
    "src CPU s/GiB": round(raw.sender.cpuSeconds / gib, 2),
    "dst CPU s/GiB": round(raw.cpuSeconds / gib, 2),
    "src RSS MiB": round(raw.sender.maxRssMiB, 0),
    "dst RSS MiB": round(raw.maxRssMiB, 0),
  });

  const k = await createKernel({ shared: true });
  for (const [kind, live] of [
    ["incompressible", false],
    ["idle recording tiled", false],
    ["live workload (incompressible + Worker guest)", true],
  ] as const) {
    const runs = [];
    for (let i = 0; i < RUNS; i++) {
      const mem = new WasmGuestMemory(k, PAGES, { shared: true });
      (kind.startsWith("idle") ? fills["idle recording tiled"] : fills.incompressible)(mem);
      runs.push(await migrate(kind, mem, live));
      mem.dispose();
    }
    const m = median(runs, (r) => r.seconds);
    if (m.report.status !== "completed") throw new Error(`${kind}: migration did not complete`);
    const rate = GUEST_BYTES / m.seconds;
    rows.push({
      guest: kind,
      "MB/s": round(rate / 1e6, 0),
      "× raw": round(rate / rawRate, 2),
      "MiB sent": round(m.report.ram.transferred / 2 ** 20, 1),
      rounds: m.report.rounds.length,
      "src CPU s/GiB": round(m.cpuSeconds / gib, 2),
      "dst CPU s/GiB": round(m.rx.cpuSeconds / gib, 2),
      "src RSS MiB": round(process.resourceUsage().maxRSS / 1024, 0),
      "dst RSS MiB": round(m.rx.maxRssMiB, 0),
    });
    if (kind === "incompressible") targets.push(target("incompressible: × raw socket", rate / rawRate, ">=", 0.7));
    if (kind.startsWith("idle"))
      targets.push(target("idle recording: effective × raw socket", rate / rawRate, ">=", 3));
  }
  const file = writeResults("engine", rows, targets);
  console.log(
    `\nengine benchmark: ${gib} GiB guest over loopback TCP, destination in another process (${QUICK ? "quick" : `median of ${RUNS}`})`,
  );
  printTable(rows);
  console.log("");
  printTargets(targets);
  console.log(`\nwrote ${file}`);
}

await main();
