// One migration as the page runs it: a guest (Worker or main thread) on source memory,
// MigrationSource → MessageChannel → MigrationDestination, the same engine and kernel as
// in Node. What the page shows comes from the engine's events and from watching, not from
// changing the engine:
//
//   source events              ──► live totals (progress), rounds, post-copy switch, activation, abort
//   source tap (frames sent)   ──► source map (sent, by encoding), link rate, probe / commit / activation
//   dirty-log wrapper          ──► source map (dirty), step mode's round hold
//   a peek at the live log     ──► source map: pages written since they were sent, as the guest writes
//   onPause                    ──► the pause phase, step mode's pause hold
//   destination tap (received) ──► destination map (applied, by encoding; missing in post-copy)
//   destination "fault" events ──► post-copy faults on the destination map
import { predictModes } from "../../src/sim/mode-prediction.js";
import { pagesRound, readPageRecords } from "../../src/wire/page-record.js";
import { MigrationDestination, type DestinationResult } from "../../src/engine/destination.js";
import type { MigrationReport } from "../../src/engine/report.js";
import { MigrationSource, type MigrationMode } from "../../src/engine/source.js";
import type { CodecOptions } from "../../src/codec/encode-pipeline.js";
import { createKernel } from "../../src/kernel/loader.js";
import type { DirtyLog } from "../../src/memory/guest-memory.js";
import { DirtyBitmap } from "../../src/kernel/dirty-bitmap.js";
import { WasmGuestMemory } from "../../src/memory/wasm-guest-memory.js";
import { FrameType } from "../../src/wire/frame.js";
import { messagePortTransport } from "../../src/transport/message-port.js";
import { realClock } from "../../src/util/clock.js";
import { PAGE_SIZE } from "../../src/kernel/abi.js";
import { MainThreadGuest, WorkerGuest, type Guest } from "./guest.js";
import type { GuestWorkloadOptions } from "./guest-workload.js";
import { tapTransport } from "./frame-tap.js";
import { countStates, DestState, SourceState, stateOfKind } from "./page-states.js";
import { PhaseLog } from "./phases.js";
import { LiveTotals, type LiveSnapshot } from "./live-totals.js";
import { Stepper } from "./stepper.js";

const SOURCE_OF_KIND = stateOfKind(SourceState.SENT);
const DEST_OF_KIND = stateOfKind(DestState.RECEIVED);
/** Step mode: a person may think for a while between rounds; the destination waits that long for the next frame. */
const STEP_FRAME_TIMEOUT_SECONDS = 3600;
/**
 * Payload bytes per PAGES frame: smaller than the engine's 1 MiB default so that the maps
 * and totals move several times a second at a watchable bandwidth (framing costs ~0.01 %).
 */
const DEMO_FRAME_BYTES = 64 << 10;

export interface DemoConfig {
  workload: string;
  workloadOptions: GuestWorkloadOptions;
  pages: number;
  /** Bytes per second. */
  bandwidth: number;
  mode: MigrationMode;
  selection: string;
  termination: string;
  /** A non-convergence policy, or "none" (QEMU's default: iterate until the termination policy or the round cap). */
  nonConvergence: string;
  codecs: CodecOptions;
  downtimeLimitMs: number;
  /** Run the guest in a Worker on shared memory (needs cross-origin isolation). */
  worker: boolean;
  /** Hold the run after each pre-copy round and before the pause until `advance()`. */
  step: boolean;
}

export interface DemoResult {
  report: MigrationReport;
  destination: DestinationResult;
  /** Source and destination memories compared byte for byte after the commit. */
  identical: boolean;
  where: Guest["where"];
  /** Post-copy faults: pages the destination guest touched while they were missing. */
  faults: number;
}

export class DemoMigration {
  readonly sourceStates: Uint8Array;
  readonly destStates: Uint8Array;
  readonly phases: PhaseLog;
  readonly live: LiveTotals;
  readonly stepper: Stepper | null;
  faults = 0;
  source!: MigrationSource;
  destination: MigrationDestination | null = null;
  guest!: Guest;
  #stopped = false;
  /** Stop cancels through the engine: before the decision the migration aborts and the guest runs on here. */
  readonly #cancel = new AbortController();
  /** The source guest stopped for stop-and-copy (or the post-copy switch). */
  #paused = false;
  #postcopy = false;
  /** The destination took POSTCOPY_START (its frames before it are pre-copy rounds). */
  #destinationPostcopy = false;
  /** A pre-copy round ended since the last step hold. */
  #roundEnded = false;
  readonly #now: () => number;
  #sendRound = -1;
  #receiveRound = -1;
  /** The pages the round on the wire has to send (harvested dirty or deferred); cleared as their records leave. */
  #candidates: Uint8Array;
  #unsent: Array<{ round: number; pages: number[] }> = [];
  /** The live dirty log and a bitmap to peek into, while pre-copy runs. */
  #live: { log: DirtyLog; into: DirtyBitmap } | null = null;
  /** When the log started or was last harvested (the clock's seconds): what a peek sees began then. */
  #loggedSince = 0;

  constructor(
    readonly config: DemoConfig,
    onHoldChange: () => void = () => {},
  ) {
    this.sourceStates = new Uint8Array(config.pages);
    this.destStates = new Uint8Array(config.pages);
    this.#candidates = new Uint8Array(config.pages).fill(1);
    this.stepper = config.step ? new Stepper(onHoldChange) : null;
    const clock = this.stepper?.clock ?? realClock;
    this.phases = new PhaseLog(() => clock.now() * 1000);
    this.live = new LiveTotals(() => clock.now());
    this.#now = () => clock.now();
  }

  get report(): MigrationReport | null {
    return this.source?.report ?? null;
  }

  /** The live totals now (post-copy: remaining is what the destination still misses). */
  snapshot(): LiveSnapshot {
    const missing = this.#postcopy ? (this.destination?.missingPages ?? 0) * PAGE_SIZE : undefined;
    return this.live.snapshot(this.phases.elapsedMs, this.config.pages * PAGE_SIZE, missing);
  }

  async run(onStage: (stage: string) => void): Promise<DemoResult> {
    const c = this.config;
    const shared = c.worker;
    onStage("loading kernel");
    const k = await createKernel({ shared, initialBytes: c.pages * 4096 + (8 << 20) });
    const dk = await createKernel({ shared: false, initialBytes: c.pages * 4096 + (8 << 20) });
    const mem = new WasmGuestMemory(k, c.pages, { shared });
    const dmem = new WasmGuestMemory(dk, c.pages);
    this.guest = shared
      ? new WorkerGuest(mem.workerHandle(), c.workload, c.workloadOptions)
      : new MainThreadGuest(mem, c.workload, c.workloadOptions);
    try {
      onStage("booting guest");
      await this.guest.init();
      if (this.#stopped) throw new Error("stopped before the migration began");
      this.guest.start();
      onStage("migrating");
      const channel = new MessageChannel();
      const srcTransport = tapTransport(messagePortTransport(channel.port1), {
        sent: (type, payload, bytes) => this.#sourceSent(type, payload, bytes),
      });
      const dstTransport = tapTransport(messagePortTransport(channel.port2), {
        received: (type, payload) => this.#destinationReceived(type, payload),
      });
      const timeouts = c.step ? { frame: STEP_FRAME_TIMEOUT_SECONDS } : undefined;
      let faulting = false;
      const dst = (this.destination = new MigrationDestination({
        memory: dmem,
        transport: dstTransport,
        kernel: dk,
        timeouts,
        // post-copy: the destination guest runs and faults on pages still missing
        onActivate: () => {
          if (!this.#postcopy || faulting || this.#stopped) return;
          faulting = true;
          void this.#fault(dst, c.pages, () => faulting);
        },
      }));
      const log = mem.dirtyLog();
      if (log.peek) this.#live = { log, into: new DirtyBitmap(k, c.pages) };
      this.source = new MigrationSource({
        memory: mem,
        dirtyLog: this.#watch(log),
        transport: srcTransport,
        kernel: k,
        mode: c.mode,
        codecs: c.codecs,
        maxBandwidth: c.bandwidth,
        downtimeLimitMs: c.downtimeLimitMs,
        policy: {
          selection: c.selection,
          termination: c.termination,
          nonConvergence: c.nonConvergence === "none" ? undefined : c.nonConvergence,
        },
        clock: this.stepper?.clock,
        timeouts,
        onPause: () => this.#pause(),
        onResume: () => this.guest.resume(),
        onThrottle: (p) => this.guest.throttle(p),
        frameBytes: DEMO_FRAME_BYTES,
        progressIntervalMs: 100,
        // auto: each mode predicted by replaying the probe in the simulator
        ...(c.mode === "auto" ? { auto: { predictor: predictModes } } : {}),
      });
      this.#listen(this.source, dst);
      this.phases.enter(c.mode === "auto" ? "probe" : "setup");
      // both ends settle; the source's outcome is the migration's (the destination of a
      // stopped migration fails too, only later or earlier)
      const [s, d] = await Promise.allSettled([this.source.migrate({ signal: this.#cancel.signal }), dst.receive()]);
      faulting = false;
      if (s.status === "rejected") throw s.reason;
      if (d.status === "rejected") throw d.reason;
      const report = s.value;
      const destination = d.value;
      const a = mem.bytes();
      const b = dmem.bytes();
      let identical = a.length === b.length;
      for (let i = 0; identical && i < a.length; i++) identical = a[i] === b[i];
      this.phases.finish("done");
      return { report, destination, identical, where: this.guest.where, faults: this.faults };
    } catch (err) {
      this.phases.finish("aborted");
      throw err;
    } finally {
      this.guest.stop();
      this.#live?.into.dispose();
      this.#live = null;
    }
  }

  /**
   * Marks the pages the guest wrote since they were sent, as it writes them: a peek at the
   * live dirty log (a copy; the log itself is untouched). Only while the guest runs here.
   */
  peekLive(): void {
    const live = this.#live;
    if (!live || this.#paused || this.#sendRound < 0) return;
    live.log.peek!(live.into);
    const states = this.sourceStates;
    const written = live.into.collect();
    for (const p of written)
      if (states[p] === SourceState.CLEAN || states[p] >= SourceState.SENT) states[p] = SourceState.DIRTY;
    this.live.peeked(written.length, this.#now() - this.#loggedSince);
  }

  /**
   * Settles the pages a round left without a record once its report row exists: deferred
   * if the policy deferred pages that round, else skipped as unchanged (the destination
   * holds them: clean). Pages dirtied again since stay dirty.
   */
  settle(): void {
    const rows = this.report?.rounds ?? [];
    this.#unsent = this.#unsent.filter(({ round, pages }) => {
      const row = rows.find((r) => r.round === round);
      if (!row) return true;
      const deferred = row.deferred > 0;
      for (const p of pages) {
        if (this.sourceStates[p] !== SourceState.DIRTY) continue;
        this.sourceStates[p] = deferred ? SourceState.DEFERRED : SourceState.CLEAN;
        // a deferred page is a candidate of the next round again
        if (deferred) this.#candidates[p] = 1;
      }
      return false;
    });
  }

  /** Stop was pressed (the run ends aborted, or completes when it came after the decision). */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Step mode: lets the held run go on. */
  advance(): void {
    this.stepper?.advance();
  }

  /**
   * Cancels the migration: before the decision it aborts (CANCELLED), the destination
   * discards and the guest runs on at the source; from the decision on it completes.
   */
  stop(): void {
    this.#stopped = true;
    this.#cancel.abort();
    this.stepper?.advance();
  }

  /** The engine's events: live totals, the rounds' start and end, the post-copy switch, the end; faults. */
  #listen(src: MigrationSource, dst: MigrationDestination): void {
    src.on("progress", (e) => (this.live.progress = e.progress));
    src.on("round-start", (e) => {
      if (e.phase === "precopy") this.#enterRound(e.round, e.pages);
    });
    src.on("round-end", (e) => {
      if (e.row.phase !== "precopy") return;
      this.phases.endCurrent();
      this.#roundEnded = true;
    });
    src.on("postcopy", () => {
      this.#postcopy = true;
      this.phases.enter("postcopy");
    });
    src.on("activate", () => this.phases.finish("done"));
    src.on("abort", () => this.phases.finish("aborted"));
    dst.on("fault", (e) => {
      if (e.page < this.destStates.length) this.destStates[e.page] = DestState.FAULT;
      this.faults++;
    });
  }

  /** onPause: step mode holds first (guest already paused), then the pause phase starts. */
  async #pause(): Promise<void> {
    if (this.stepper && !this.#stopped) {
      await this.guest.pause();
      await this.stepper.hold("pause");
    }
    this.#paused = true;
    this.settle();
    this.phases.enter("pause", {
      pending: countStates(this.sourceStates, SourceState.UNSENT, SourceState.DIRTY, SourceState.DEFERRED),
    });
    await this.guest.pause();
  }

  /** The destination guest touching pages at random after the post-copy switch. */
  async #fault(dst: MigrationDestination, pages: number, running: () => boolean): Promise<void> {
    let seed = 12345;
    while (running() && !this.#stopped) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      try {
        await dst.ensurePage(seed % pages);
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  /** The dirty log, reporting each harvest to the map; in step mode it holds after each round's harvest. */
  #watch(log: DirtyLog): DirtyLog {
    return {
      start: (session) => {
        log.start(session);
        this.#loggedSince = this.#now();
      },
      stop: () => log.stop(),
      // the live log's peek (Xen's to_skip) goes through untouched
      ...(log.peek ? { peek: (into: Parameters<NonNullable<DirtyLog["peek"]>>[0]) => log.peek!(into) } : {}),
      harvest: async (into) => {
        this.settle(); // the finished round's row exists: its pages without a record are settled first
        await log.harvest(into);
        this.#loggedSince = this.#now();
        const dirty = into.collect();
        for (const p of dirty) {
          // a page never sent stays "unsent" (auto mode's probe harvests before round 0)
          if (this.sourceStates[p] !== SourceState.UNSENT) this.sourceStates[p] = SourceState.DIRTY;
          this.#candidates[p] = 1;
        }
        if (this.stepper && this.#roundEnded && !this.#paused && !this.#stopped) {
          this.#roundEnded = false;
          await this.guest.pause();
          await this.stepper.hold("round");
          this.guest.resume();
        }
      },
    };
  }

  /** A frame the source sends: the source map, the phases and the live totals. */
  #sourceSent(type: number, payload: Uint8Array, bytes: number): void {
    const states = this.sourceStates;
    switch (type) {
      case FrameType.HELLO:
        if (this.phases.current?.kind === "probe") this.phases.enter("setup");
        break;
      case FrameType.PAGES: {
        const r = pagesRound(payload);
        if (r !== this.#sendRound) {
          // a new round: what earlier rounds sent is now clean (unless written since)
          this.#sendRound = r;
          for (let i = 0; i < states.length; i++) if (states[i] >= SourceState.SENT) states[i] = SourceState.CLEAN;
        }
        for (const rec of readPageRecords(payload, states.length)) {
          states[rec.page] = SOURCE_OF_KIND[rec.kind];
          this.#candidates[rec.page] = 0;
        }
        break;
      }
      case FrameType.ROUND_END: {
        // the round's pages without a record: deferred by the selection policy or skipped
        // as unchanged; the round's report row (pushed just after) tells which
        const left: number[] = [];
        const candidates = this.#candidates;
        for (let i = 0; i < candidates.length; i++) {
          if (candidates[i]) left.push(i);
          candidates[i] = 0;
        }
        const ended = (JSON.parse(new TextDecoder().decode(payload)) as { round: number }).round;
        if (left.length) this.#unsent.push({ round: ended, pages: left });
        break;
      }
      case FrameType.POSTCOPY_START:
        // the pages still to send: written since sent (dirty), or never sent
        for (let i = 0; i < states.length; i++)
          if (payload[i >> 3] & (1 << (i & 7)) && states[i] !== SourceState.UNSENT) states[i] = SourceState.DIRTY;
        break;
      case FrameType.COMPLETE:
        this.phases.enter("commit");
        break;
      case FrameType.ACTIVATE:
        this.phases.enter("activation");
        break;
    }
    this.live.sent(bytes);
  }

  /** Pre-copy round `round` starts with `pages` to send. */
  #enterRound(round: number, pages: number): void {
    this.phases.enter("round", { round, pending: pages });
  }

  /** A frame the destination received (and applies next): the destination map. */
  #destinationReceived(type: number, payload: Uint8Array): void {
    const states = this.destStates;
    if (type === FrameType.PAGES) {
      const r = pagesRound(payload);
      if (r !== this.#receiveRound && !this.#destinationPostcopy) {
        this.#receiveRound = r;
        for (let i = 0; i < states.length; i++) if (states[i] >= DestState.RECEIVED) states[i] = DestState.HELD;
      }
      for (const rec of readPageRecords(payload, states.length))
        if (states[rec.page] !== DestState.FAULT) states[rec.page] = DEST_OF_KIND[rec.kind];
    } else if (type === FrameType.POSTCOPY_START) {
      this.#destinationPostcopy = true;
      for (let i = 0; i < states.length; i++) {
        if (payload[i >> 3] & (1 << (i & 7))) states[i] = DestState.MISSING;
        else if (states[i] >= DestState.RECEIVED) states[i] = DestState.HELD;
      }
    }
  }
}
