// Post-copy recovery end to end over TCP (issue 13): source and destination in this process
// on real sockets, through a proxy (test/support/tcp-proxy.ts) that drops the connection in
// the middle of post-copy while the destination guest faults pages in and writes them.
//
//   MigrationSource ──connectTcp──► TcpProxy ──────► TcpListener ──► MigrationDestination
//     reconnect: connectTcp(proxy)    cut n bytes after the switch    accept: listener.accept()
//     maxBandwidth: post-copy takes   (each replacement connection    guest: ensurePage + writes
//     about a second                  gets the next cut), or refuse   (test/support/postcopy-guest.ts)
//                                     every connection after the cut
//
// With a reconnection the migration completes: the destination memory is the source's at
// the pause with the destination guest's writes on top, byte for byte; the source paused
// once and never resumed; the destination ran from the switch on. Without one (the proxy
// refuses), both sides end in doubt within the reconnect window, and the destination keeps
// its memory and keeps running.
//
// The cases of the last describe are regressions for bugs this test found in src (dedup in
// post-copy, a fault during reconnection, the report after a recovery).
import { afterEach, describe, expect, it } from "vitest";
import { createKernel, PAGE_SIZE } from "../../src/index.js";
import { MigrationDestination, type DestinationResult } from "../../src/engine/destination.js";
import { MigrationInDoubtError } from "../../src/engine/ownership.js";
import type { MigrationReport } from "../../src/engine/report.js";
import { MigrationSource } from "../../src/engine/source.js";
import type { DirtyLog } from "../../src/memory/guest-memory.js";
import { WasmGuestMemory } from "../../src/memory/wasm-guest-memory.js";
import { createInProcessPair } from "../../src/transport/in-process.js";
import { connectTcp, TcpListener, type TcpTransport } from "../../src/transport/tcp.js";
import type { Transport } from "../../src/transport/transport.js";
import { FrameType } from "../../src/wire/frame.js";
import { fillRandom } from "../support/pairs.js";
import { startPostcopyGuest, type PostcopyGuest } from "../support/postcopy-guest.js";
import { randInt, rng } from "../support/random.js";
import { TcpProxy, type ProxyCut } from "../support/tcp-proxy.js";

const PAGES = 2048; // 8 MiB
const TIMEOUTS = { reconnectWindow: 3, pageRequest: 1, frame: 5, handshake: 2, activation: 2, commit: 5 };
/** Bytes per second: post-copy of the whole guest takes about a second. */
const BANDWIDTH = 6e6;

/** Seeded guest content: random pages, every 16th page zero, about 8 % copies of an earlier page. */
function fillGuest(mem: WasmGuestMemory, seed: number): void {
  const r = rng(seed);
  const b = mem.bytes();
  for (let p = 0; p < mem.pageCount; p++) {
    const page = b.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
    if (p % 16 === 5) continue; // zero
    if (p > 32 && r() < 0.08) {
      let from = randInt(r, p);
      if (from % 16 === 5) from++;
      page.set(b.subarray(from * PAGE_SIZE, (from + 1) * PAGE_SIZE));
      continue;
    }
    fillRandom(r, page);
  }
}

/**
 * Hybrid's guest on the source: before each harvest (between pre-copy rounds) it rewrites
 * `pages` random pages, some as copies of another page, some zeroed; nothing once paused.
 */
function writingDirtyLog(mem: WasmGuestMemory, seed: number, pages: number, paused: () => boolean): DirtyLog {
  const log = mem.dirtyLog();
  const r = rng(seed);
  const page = new Uint8Array(PAGE_SIZE);
  return {
    ...log,
    harvest: (into) => {
      if (!paused()) {
        for (let i = 0; i < pages; i++) {
          const p = randInt(r, mem.pageCount);
          const kind = r();
          if (kind < 0.05) page.fill(0);
          else if (kind < 0.15) page.set(mem.pageView(randInt(r, mem.pageCount)));
          else fillRandom(r, page);
          mem.write(p * PAGE_SIZE, page);
        }
      }
      return log.harvest(into);
    },
  };
}

interface Scenario {
  mode: "postcopy" | "hybrid";
  seed: number;
  /**
   * Source → destination bytes before each cut: the first counted from the post-copy
   * switch (onActivate), each next one from the connection that replaced the last cut one.
   */
  cuts: number[];
  /** After the first cut the proxy resets every new connection (the source cannot come back). */
  refuseAfterCut?: boolean;
  /** Hybrid: pages the source guest rewrites between pre-copy rounds (default 500). */
  sourceWrites?: number;
  /**
   * Dedup references. Default off: in post-copy a reference copies a destination page the
   * destination guest may have written since (see "found in src").
   */
  dedup?: boolean;
  /** The destination guest writing from the switch on (default true). */
  guest?: boolean;
  /** Wraps each connection the destination accepts after a loss (n: 1 for the first). */
  wrapAccepted?: (t: Transport, n: number, destination: MigrationDestination) => Transport;
}

interface Run {
  source: MigrationSource;
  destination: MigrationDestination;
  s: PromiseSettledResult<MigrationReport>;
  d: PromiseSettledResult<DestinationResult>;
  src: WasmGuestMemory;
  dst: WasmGuestMemory;
  proxy: TcpProxy;
  guest: PostcopyGuest | null;
  atPause: Uint8Array;
  pauses: number;
  resumes: number;
  activations: number;
  discards: number;
  commits: number;
  cutsDone: ProxyCut[];
  /** performance.now() ms when the first cut struck, and when each side settled. */
  cutAt: number;
  sourceSettledAt: number;
  destinationSettledAt: number;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function runOverProxy(sc: Scenario): Promise<Run> {
  const ks = await createKernel();
  const kd = await createKernel();
  const src = new WasmGuestMemory(ks, PAGES);
  const dst = new WasmGuestMemory(kd, PAGES);
  cleanups.push(() => {
    src.dispose();
    dst.dispose();
  });
  fillGuest(src, sc.seed);

  const listener = await TcpListener.listen("127.0.0.1", 0);
  cleanups.push(() => listener.close());
  const sockets: TcpTransport[] = [];
  cleanups.push(() => {
    for (const t of sockets) t.destroy();
  });
  const connect = async () => {
    const t = await connectTcp("127.0.0.1", proxy.port);
    sockets.push(t);
    return t;
  };
  let accepts = 0;
  const accept = async (): Promise<Transport> => {
    const t = await listener.accept();
    sockets.push(t);
    const n = accepts++;
    return n > 0 && sc.wrapAccepted ? sc.wrapAccepted(t, n, destination) : t;
  };

  let destination!: MigrationDestination;
  let cutAt = NaN;
  const cutsDone: ProxyCut[] = [];
  const armCut = (i: number) => {
    if (i < sc.cuts.length) void proxy.cutAfter(sc.cuts[i]).then((c) => cutsDone.push(c));
  };
  const proxy = await TcpProxy.start(listener.port, {
    // each connection that replaces a cut one gets the next cut
    onConnect: (n) => {
      if (n >= 2) armCut(n - 1);
    },
    onCut: () => {
      if (Number.isNaN(cutAt)) cutAt = performance.now();
      if (sc.refuseAfterCut) proxy.refuse();
      return { state: destination.state, running: destination.running, sourceState: source.state };
    },
  });
  cleanups.push(() => proxy.close());

  const accepted = accept();
  const transport = await connect();
  const destinationTransport = await accepted;

  const counts = { pauses: 0, resumes: 0, activations: 0, discards: 0, commits: 0 };
  let atPause: Uint8Array | null = null;
  const source = new MigrationSource({
    kernel: ks,
    memory: src,
    transport,
    mode: sc.mode,
    maxBandwidth: BANDWIDTH,
    timeouts: TIMEOUTS,
    codecs: { dedup: sc.dedup ?? true },
    dirtyLog:
      sc.mode === "hybrid"
        ? writingDirtyLog(src, sc.seed + 1, sc.sourceWrites ?? 500, () => atPause !== null)
        : src.dirtyLog(),
    maxRounds: 3,
    downtimeLimitMs: 0,
    reconnect: connect,
    onPause: () => {
      counts.pauses++;
      atPause = src.bytes().slice();
    },
    onResume: () => void counts.resumes++,
  });
  let guest = null as PostcopyGuest | null; // assigned in onActivate
  const memory = Object.assign(dst, {
    commit: async () => void counts.commits++,
    discard: async () => void counts.discards++,
  });
  destination = new MigrationDestination({
    kernel: kd,
    memory,
    transport: destinationTransport,
    accept,
    timeouts: TIMEOUTS,
    onActivate: () => {
      counts.activations++;
      // the guest runs here from the switch on; the link goes down some bytes later
      if (sc.guest !== false)
        guest ??= startPostcopyGuest(destination, dst, {
          seed: sc.seed + 2,
          holdWhilePaused: false,
          epoch: () => proxy.connections,
        });
      armCut(0);
    },
  });
  cleanups.push(async () => {
    await guest?.stop();
  });

  let sourceSettledAt = NaN;
  let destinationSettledAt = NaN;
  const [s, d] = await Promise.allSettled([
    source.migrate().finally(() => (sourceSettledAt = performance.now())),
    destination.receive().finally(() => (destinationSettledAt = performance.now())),
  ]);
  // let the guest make a few more writes on the finished memory, then stop it
  await new Promise((resolve) => setTimeout(resolve, 20));
  await guest?.stop();
  expect(atPause, "the source paused").not.toBeNull();
  return {
    source,
    destination,
    s,
    d,
    src,
    dst,
    proxy,
    guest,
    atPause: atPause!,
    ...counts,
    cutsDone,
    cutAt,
    sourceSettledAt,
    destinationSettledAt,
  };
}

/** Pages of `actual` that differ from `expected` (for a readable failure). */
function differingPages(expected: Uint8Array, actual: Uint8Array): number[] {
  const out: number[] = [];
  for (let p = 0; p < expected.length / PAGE_SIZE; p++) {
    if (
      Buffer.compare(
        expected.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE),
        actual.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE),
      ) !== 0
    )
      out.push(p);
  }
  return out;
}

function fulfilled<T>(r: PromiseSettledResult<T>): T {
  if (r.status === "rejected") throw r.reason;
  return r.value;
}

/** The checks every recovered run shares. */
function expectRecovered(run: Run, cuts: number): { report: MigrationReport; result: DestinationResult } {
  const report = fulfilled(run.s);
  const result = fulfilled(run.d);
  // the link went down as often as planned, each time in post-copy, and came back
  expect(run.cutsDone.length).toBe(cuts);
  for (const c of run.cutsDone) {
    expect(c.connections, "the cut dropped the open connection").toBe(1);
    expect(c.note).toMatchObject({ state: "postcopy", running: true, sourceState: "postcopy" });
  }
  expect(report.recovery.count).toBeGreaterThanOrEqual(cuts);
  expect(result.recoveries).toBe(report.recovery.count);
  expect(run.proxy.connections).toBeGreaterThanOrEqual(Math.max(2, report.recovery.count + 1));
  // the replacement connections carried pages again (what POSTCOPY_RECOVER said was missing)
  expect(run.proxy.perConnection.slice(1).reduce((a, b) => a + b, 0)).toBeGreaterThan(256 * 1024);
  expect(report.status).not.toBe("in-doubt");
  expect(report.mode).toBe(result.mode);
  expect(result.postcopy?.requests, "the destination guest faulted pages in").toBeGreaterThan(0);

  // ownership: the source paused once and never resumed; the destination ran from the switch
  expect(run.pauses).toBe(1);
  expect(run.resumes).toBe(0);
  expect(run.source.state).toBe("done");
  expect(run.activations).toBe(1);
  expect(run.commits).toBe(1);
  expect(run.discards).toBe(0);
  expect(run.destination.state).toBe("active");
  expect(run.destination.running).toBe(true);
  const guest = run.guest!;
  expect(guest.notRunning, "the destination guest found the destination not running").toBe(0);
  expect(guest.error).toBeNull();

  // memory: the source at the pause, untouched since, plus every write of the destination guest
  expect(guest.writes.length).toBeGreaterThan(20);
  expect(Buffer.compare(run.src.bytes(), run.atPause), "the source memory changed after the pause").toBe(0);
  expect(differingPages(guest.applyTo(run.atPause), run.dst.bytes())).toEqual([]);
  return { report, result };
}

describe("post-copy recovery over TCP through a proxy that drops the connection", () => {
  it("postcopy: one cut mid post-copy while the destination guest writes; recovered, memory exact, source never resumed", async () => {
    const run = await runOverProxy({ mode: "postcopy", seed: 1301, cuts: [2_000_000] });
    expectRecovered(run, 1);
    // the guest wrote on the first connection, on its replacement, and after the activation
    const w = run.guest!.writes;
    expect(w.some((x) => x.state === "postcopy" && x.epochs[1] === 1)).toBe(true);
    expect(w.some((x) => x.state === "postcopy" && x.epochs[0] >= 2)).toBe(true);
    expect(w.some((x) => x.state === "active")).toBe(true);
  });

  it("postcopy: two cuts (the replacement connection is dropped too); two recoveries, memory exact", async () => {
    const run = await runOverProxy({ mode: "postcopy", seed: 1302, cuts: [1_500_000, 1_500_000] });
    expectRecovered(run, 2);
    expect(run.proxy.perConnection[1], "the second connection was cut at its byte").toBe(1_500_000);
  });

  it("hybrid: pre-copy rounds with source writes between them, then a cut mid post-copy; recovered, memory exact", async () => {
    const run = await runOverProxy({ mode: "hybrid", seed: 1303, cuts: [500_000], sourceWrites: 600 });
    const { report } = expectRecovered(run, 1);
    expect(report.mode).toBe("hybrid");
    expect(report.rounds.filter((r) => r.phase === "precopy").length).toBeGreaterThanOrEqual(2);
  });

  it("the source cannot come back (new connections refused): both sides in doubt within the window; the destination keeps its memory and runs", async () => {
    const run = await runOverProxy({ mode: "postcopy", seed: 1304, cuts: [2_000_000], refuseAfterCut: true });
    expect(run.cutsDone.length).toBe(1);
    expect(run.cutsDone[0].note).toMatchObject({ state: "postcopy", running: true, sourceState: "postcopy" });
    expect(run.s.status).toBe("rejected");
    expect(run.d.status).toBe("rejected");
    const se = (run.s as PromiseRejectedResult).reason;
    const de = (run.d as PromiseRejectedResult).reason;
    expect(se).toBeInstanceOf(MigrationInDoubtError);
    expect(de).toBeInstanceOf(MigrationInDoubtError);
    expect(se).toMatchObject({ side: "source", decision: "postcopy" });
    expect(de).toMatchObject({ side: "destination", decision: "postcopy" });
    // the source kept trying through the proxy, which reset every attempt
    expect(run.proxy.connections).toBe(1);
    expect(run.proxy.refused).toBeGreaterThanOrEqual(1);
    expect(run.source.report.recovery.count).toBe(0);
    expect(run.source.report.status).toBe("in-doubt");
    // within the reconnect window: each side waited it out, and not much longer
    const window = TIMEOUTS.reconnectWindow * 1000;
    for (const at of [run.sourceSettledAt, run.destinationSettledAt]) {
      expect(at - run.cutAt).toBeGreaterThanOrEqual(window - 50);
      expect(at - run.cutAt).toBeLessThan(window + 2000);
    }
    // ownership: nothing resumed or discarded; the destination guest still owns the memory
    expect(run.pauses).toBe(1);
    expect(run.resumes).toBe(0);
    expect(run.source.state).toBe("in-doubt");
    expect(run.destination.state).toBe("in-doubt");
    expect(run.destination.running).toBe(true);
    expect(run.discards).toBe(0);
    expect(run.commits).toBe(0);
    expect(run.activations).toBe(1);
    const guest = run.guest!;
    expect(guest.notRunning).toBe(0);
    expect(guest.error, "the guest's pending fault ends with the in-doubt error").toBe(de);
    // memory kept: every page is the source's at the pause plus the guest's writes, or was never received
    expect(Buffer.compare(run.src.bytes(), run.atPause)).toBe(0);
    const expected = guest.applyTo(run.atPause);
    const actual = run.dst.bytes();
    const written = new Set(guest.writes.map((w) => Math.floor(w.offset / PAGE_SIZE)));
    let received = 0;
    let missing = 0;
    const wrong: number[] = [];
    for (let p = 0; p < PAGES; p++) {
      const have = actual.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
      if (Buffer.compare(expected.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE), have) === 0) received++;
      else if (have.every((x) => x === 0) && !written.has(p)) missing++;
      else wrong.push(p);
    }
    expect(wrong).toEqual([]);
    expect(missing, "the cut left pages missing").toBeGreaterThan(0);
    expect(received).toBeGreaterThan(0);
    expect(guest.writes.length).toBeGreaterThan(0);
    // the operator cannot discard what the destination guest wrote
    await expect(run.destination.resolve("abort")).rejects.toMatchObject({ code: "RESOLVE_REFUSED" });
    expect(run.discards).toBe(0);
  });
});

describe("regressions found by this test", () => {
  // A DEDUP record is applied by copying the referenced page out of the destination's own
  // memory; after the switch the destination guest may have written that page, so the
  // pipeline sends no dedup references in post-copy (EncodePipeline, sendAll). Without that
  // rule the guest's writes leak into the duplicate and the digest check fails.
  it("post-copy with dedup: a duplicate of a page the destination guest already wrote arrives with the source's content", async () => {
    const ks = await createKernel();
    const kd = await createKernel();
    const n = 64;
    const src = new WasmGuestMemory(ks, n);
    const dst = new WasmGuestMemory(kd, n);
    cleanups.push(() => {
      src.dispose();
      dst.dispose();
    });
    const r = rng(1305);
    for (let p = 0; p < n; p++) fillRandom(r, src.pageView(p));
    src.pageView(n - 1).set(src.pageView(1)); // the last page duplicates page 1
    const atPause = src.bytes().slice();
    const [a, b] = createInProcessPair();
    const mark = Uint8Array.of(1, 2, 3, 4);
    let wrote = false;
    // 1 MB/s: 16-page chunks 64 ms apart; page 1 goes in the first, the last page in the fourth
    const source = new MigrationSource({
      kernel: ks,
      memory: src,
      dirtyLog: src.dirtyLog(),
      transport: a,
      mode: "postcopy",
      codecs: { dedup: true },
      maxBandwidth: 1e6,
      timeouts: TIMEOUTS,
    });
    const destination: MigrationDestination = new MigrationDestination({
      kernel: kd,
      memory: dst,
      transport: b,
      timeouts: TIMEOUTS,
      // the destination guest faults page 1 in and writes it at once
      onActivate: () =>
        void destination.ensurePage(1).then(
          () => {
            dst.write(PAGE_SIZE + 100, mark);
            wrote = true;
          },
          () => {},
        ),
    });
    const [s, d] = await Promise.allSettled([source.migrate(), destination.receive()]);
    expect(wrote, "the destination guest wrote page 1 before its duplicate arrived").toBe(true);
    const expected = atPause.slice();
    expected.set(mark, PAGE_SIZE + 100);
    expect(d.status === "rejected" ? (d.reason as Error).message : "", "the destination's receive()").toBe("");
    expect(s.status).toBe("fulfilled");
    expect(differingPages(expected, dst.bytes())).toEqual([]);
  });

  // A guest fault while the destination is recovering (postcopy-paused) must not put a
  // PAGE_REQUEST on the replacement connection ahead of POSTCOPY_RECOVER: the destination
  // sends no request then (the recovery bitmap covers the page) and the source skips one
  // that arrives before the answer. With several vCPUs a fault can start at any instant:
  // here one starts right as the destination sends the replacement connection's CHALLENGE.
  it("a fault between accepting the replacement connection and reading RESUME does not break the recovery", async () => {
    let injected = false;
    let recovered = false;
    let requestBeforeRecover = false;
    const run = await runOverProxy({
      mode: "postcopy",
      seed: 1306,
      cuts: [300_000],
      guest: false,
      wrapAccepted: (t, _n, destination) => {
        let frames = 0;
        return {
          get bytesSent() {
            return t.bytesSent;
          },
          get bytesReceived() {
            return t.bytesReceived;
          },
          send(frame) {
            const sent = t.send(frame);
            if (frames++ === 0 && frame[5] === FrameType.CHALLENGE) {
              // no guest: the push goes up from page 0, so the last page is still missing
              injected = destination.state === "postcopy-paused";
              void destination.ensurePage(PAGES - 1).catch(() => {});
            } else if (!recovered && frame[5] === FrameType.PAGE_REQUEST) {
              requestBeforeRecover = true;
            }
            if (frame[5] === FrameType.POSTCOPY_RECOVER) recovered = true;
            return sent;
          },
          receive: () => t.receive(),
          close: () => t.close(),
        };
      },
    });
    expect(injected, "a fault started during the reconnection").toBe(true);
    expect(requestBeforeRecover, "a PAGE_REQUEST went ahead of POSTCOPY_RECOVER").toBe(false);
    expect(run.cutsDone).toHaveLength(1);
    expect(run.s.status === "rejected" ? (run.s.reason as Error).message : "", "the source's migrate()").toBe("");
    expect(run.d.status).toBe("fulfilled");
    expect(Buffer.compare(run.dst.bytes(), run.atPause)).toBe(0);
  });

  // A post-copy push cut short by a lost connection still adds its round row and counters,
  // so the rows add up to ram.pages-sent (counted per batch) after a recovery too.
  it("after a recovery the report's round rows add up to ram.pages-sent", async () => {
    const run = await runOverProxy({ mode: "postcopy", seed: 1307, cuts: [2_000_000] });
    expect(run.s.status).toBe("fulfilled");
    const report = (run.s as PromiseFulfilledResult<MigrationReport>).value;
    expect(report.recovery.count).toBeGreaterThanOrEqual(1);
    expect(report.rounds.reduce((sum, r) => sum + r.sent, 0)).toBe(report.ram["pages-sent"]);
  });
});
