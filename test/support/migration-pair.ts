// One source guest, one destination memory, a transport between them, MigrationSource and
// MigrationDestination: the set-up of every engine test that runs both sides in this
// process.
//
//   src (WasmGuestMemory) ─ MigrationSource ─ [fault] ─ in-process pair | TCP ─ [fault] ─ MigrationDestination ─ dst
//          ▲                                  └─ clock "virtual": a simulated link on a VirtualClock
//   writer.run(dt) on clock.onAdvance, until onPause
//
// On the virtual clock the source is charged modeled CPU time for each page it reads (as
// in src/sim/simulator.ts), so that time passes while a round is encoded and the writer's
// writes land between and during rounds, not only while the handshake waits.
//
// `run()` waits for both sides (allSettled, so neither rejection goes unhandled) and throws
// the source's error first; `settle()` returns both outcomes for tests that expect failure.
// Memories, transports and a TCP listener are released when the test finishes.
import { onTestFinished } from "vitest";
import { createKernel, type Kernel } from "../../src/index.js";
import type { CodecOptions } from "../../src/codec/encode-pipeline.js";
import { MigrationDestination, type DestinationMemory, type DestinationResult } from "../../src/engine/destination.js";
import type { Feature } from "../../src/engine/features.js";
import type { MigrationReport } from "../../src/engine/report.js";
import { MigrationSource, type MigrationMode, type MigrationSourceOptions } from "../../src/engine/source.js";
import type { DirtyLog, GuestMemory } from "../../src/memory/guest-memory.js";
import { WasmGuestMemory } from "../../src/memory/wasm-guest-memory.js";
import { createLink, type LinkEnd, type LinkOptions } from "../../src/sim/link.js";
import { VirtualClock } from "../../src/sim/virtual-clock.js";
import { createInProcessPair } from "../../src/transport/in-process.js";
import { connectTcp, TcpListener, type TcpOptions } from "../../src/transport/tcp.js";
import type { Transport } from "../../src/transport/transport.js";
import { frameKey } from "../../src/wire/hmac.js";
import { faulty, type Fault } from "./faulty-transport.js";
import { createGuestWriter, type GuestWriter, type GuestWriterOptions } from "./guest-writer.js";

export interface MigrationPairOptions {
  /** Guest RAM in pages (both sides). */
  pages: number;
  /** "two" kernels (default), as two hosts have, or "one" kernel for both memories. */
  kernels?: "one" | "two";
  /** Kernels on shared WebAssembly memory. */
  shared?: boolean;
  mode?: MigrationMode;
  codecs?: CodecOptions;
  /** Features the destination accepts (default: all it implements). */
  destinationFeatures?: Feature[];
  policy?: MigrationSourceOptions["policy"];
  /** Pre-shared key text (at least 16 bytes) for both sides, unless `destinationKey` differs. */
  key?: string;
  destinationKey?: string;
  /** Default "in-process". */
  transport?: "in-process" | "tcp";
  /** TCP: TLS options of the listener and of the client. */
  tls?: { server: TcpOptions["tls"]; client: TcpOptions["tls"] };
  /** "virtual": both sides on a VirtualClock, frames through a simulated link (in-process only). Default "real". */
  clock?: "real" | "virtual";
  /** The simulated link (default 1 GB/s each way, 0.1 ms latency). */
  link?: Partial<LinkOptions>;
  /** Virtual clock: CPU time charged per page the source reads, ns (default 400, the simulator's model). */
  cpuNsPerPage?: number;
  /** Injects one fault into the frames one side sends (see faulty-transport.ts). */
  fault?: { side: "source" | "destination"; fault: Fault; when: (type: number, index: number) => boolean };
  /** A guest writing the source memory as virtual time passes, until the pause (needs clock "virtual"). */
  writer?: GuestWriterOptions;
  /** Replaces the source's software dirty log (given it); false: no dirty log. */
  dirtyLog?: false | ((log: DirtyLog) => DirtyLog);
  /** Gives the destination memory commit()/discard() that only record the call, as a file destination has. */
  trackCommit?: boolean;
  /** Called when the destination guest may run (post-copy switch, or commit). Do not await migration work here. */
  onActivate?: (destination: MigrationDestination) => void;
  /** Further source options; onPause and onResume run after the pair's own bookkeeping. */
  source?: Partial<MigrationSourceOptions>;
  /** Cancels `migrate` / `receive` when aborted. */
  signals?: { source?: AbortSignal; destination?: AbortSignal };
}

export interface MigrationPair {
  source: MigrationSource;
  destination: MigrationDestination;
  src: WasmGuestMemory;
  dst: WasmGuestMemory;
  kernels: [Kernel, Kernel];
  /** The transports as each engine sees them (after the link and fault wrappers). */
  sourceTransport: Transport;
  destinationTransport: Transport;
  clock: VirtualClock | null;
  writer: GuestWriter | null;
  /** TCP: the listener, open until the test ends. */
  listener: TcpListener | null;
  /** The source memory when the guest was paused (after the writer stopped and any onPause of `source`). */
  readonly atPause: Uint8Array | null;
  readonly paused: boolean;
  readonly resumed: boolean;
  readonly committed: boolean;
  readonly discarded: boolean;
  /** The injected fault struck. */
  readonly faultFired: boolean;
  /** Both sides to the end; throws the source's error, else the destination's. */
  run(): Promise<{ report: MigrationReport; result: DestinationResult }>;
  /** Both sides to the end, whatever the outcome. */
  settle(): Promise<[PromiseSettledResult<MigrationReport>, PromiseSettledResult<DestinationResult>]>;
  /** Frees the memories and closes transports and listener (also done when the test finishes). */
  dispose(): void;
}

const keyOf = (text: string) => frameKey(new TextEncoder().encode(text));

export async function createMigrationPair(o: MigrationPairOptions): Promise<MigrationPair> {
  const virtual = o.clock === "virtual";
  if (o.writer && !virtual)
    throw new Error('createMigrationPair: a writer runs on the virtual clock (clock: "virtual")');
  if (virtual && o.transport === "tcp")
    throw new Error("createMigrationPair: the virtual clock needs the in-process transport");
  const ks = await createKernel({ shared: o.shared });
  const kd = o.kernels === "one" ? ks : await createKernel({ shared: o.shared });
  const src = new WasmGuestMemory(ks, o.pages);
  const dst = new WasmGuestMemory(kd, o.pages);
  const clock = virtual ? new VirtualClock() : null;
  const writer = o.writer ? createGuestWriter(src, o.writer) : null;
  if (clock && writer) clock.onAdvance = (from, to) => writer.run(to - from);

  let listener: TcpListener | null = null;
  let ends: [Transport, Transport];
  if (o.transport === "tcp") {
    listener = await TcpListener.listen("127.0.0.1", 0, { tls: o.tls?.server });
    const accepted = listener.accept();
    const client = await connectTcp("127.0.0.1", listener.port, { tls: o.tls?.client });
    ends = [client, await accepted];
  } else {
    ends = createInProcessPair();
    if (clock) ends = createLink(ends, clock, { bandwidth: 1e9, latency: 0.0001, ...o.link });
  }
  // modeled CPU time per page read; the link makes the source pay it before its next frame
  const nsPerPage = o.cpuNsPerPage ?? 400;
  const memory: GuestMemory = clock
    ? {
        pageCount: src.pageCount,
        readPages: (pages, out) => {
          src.readPages(pages, out);
          (ends[0] as LinkEnd).cpuDebt += (pages.length * nsPerPage) / 1e9;
        },
        writePage: (p, d) => src.writePage(p, d),
        pageView: (p) => src.pageView(p),
        flush: () => src.flush(),
      }
    : src;
  const inject = (t: Transport, side: "source" | "destination") =>
    o.fault?.side === side ? faulty(t, o.fault.fault, o.fault.when) : t;
  const sourceTransport = inject(ends[0], "source");
  const destinationTransport = inject(ends[1], "destination");

  const state = {
    atPause: null as Uint8Array | null,
    paused: false,
    resumed: false,
    committed: false,
    discarded: false,
  };
  const dstMemory: DestinationMemory = o.trackCommit
    ? Object.assign(dst, {
        commit: async () => void (state.committed = true),
        discard: async () => void (state.discarded = true),
      })
    : dst;
  const extra = o.source ?? {};
  const log = src.dirtyLog();
  const source = new MigrationSource({
    kernel: ks,
    memory,
    transport: sourceTransport,
    mode: o.mode,
    codecs: o.codecs,
    policy: o.policy,
    key: o.key === undefined ? undefined : keyOf(o.key),
    clock: clock ?? undefined,
    dirtyLog: o.dirtyLog === false ? undefined : o.dirtyLog ? o.dirtyLog(log) : log,
    ...extra,
    onPause: async () => {
      writer?.stop();
      state.paused = true;
      await extra.onPause?.();
      state.atPause = src.bytes().slice();
    },
    onResume: async () => {
      state.resumed = true;
      await extra.onResume?.();
    },
  });
  const dstKey = o.destinationKey ?? o.key;
  const destination: MigrationDestination = new MigrationDestination({
    kernel: kd,
    memory: dstMemory,
    transport: destinationTransport,
    clock: clock ?? undefined,
    key: dstKey === undefined ? undefined : keyOf(dstKey),
    features: o.destinationFeatures,
    onActivate: o.onActivate && (() => o.onActivate!(destination)),
  });

  let outcome: Promise<[PromiseSettledResult<MigrationReport>, PromiseSettledResult<DestinationResult>]> | null = null;
  let disposed = false;
  const pair: MigrationPair = {
    source,
    destination,
    src,
    dst,
    kernels: [ks, kd],
    sourceTransport,
    destinationTransport,
    clock,
    writer,
    listener,
    get atPause() {
      return state.atPause;
    },
    get paused() {
      return state.paused;
    },
    get resumed() {
      return state.resumed;
    },
    get committed() {
      return state.committed;
    },
    get discarded() {
      return state.discarded;
    },
    get faultFired() {
      return (
        (sourceTransport as { fired?: boolean }).fired ?? (destinationTransport as { fired?: boolean }).fired ?? false
      );
    },
    settle() {
      outcome ??= Promise.allSettled([
        source.migrate({ signal: o.signals?.source }),
        destination.receive({ signal: o.signals?.destination }),
      ]).then((r) => {
        if (clock) clock.onAdvance = null; // timers left over (a lost timeout race) must not run the guest
        return r;
      });
      return outcome;
    },
    async run() {
      const [s, d] = await pair.settle();
      if (s.status === "rejected") throw s.reason;
      if (d.status === "rejected") throw d.reason;
      return { report: s.value, result: d.value };
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      sourceTransport.close();
      destinationTransport.close();
      listener?.close();
      src.dispose();
      dst.dispose();
    },
  };
  onTestFinished(() => pair.dispose());
  return pair;
}
