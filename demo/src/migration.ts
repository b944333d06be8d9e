// One migration as the page runs it: a guest (Worker or main thread) on source memory,
// MigrationSource → MessageChannel → MigrationDestination, the same engine and kernel as
// in Node. A tap on the source transport and a wrapper around the dirty log feed the
// memory map: which pages the log saw dirty, which were sent and how, which deferred.
import { pagesRound, readPageRecords } from "../../src/wire/page-record.js";
import { RECORD_CODECS } from "../../src/codec/codecs.js";
import { MigrationDestination, type DestinationResult } from "../../src/engine/destination.js";
import type { MigrationReport } from "../../src/engine/report.js";
import { MigrationSource, type MigrationMode } from "../../src/engine/source.js";
import type { CodecOptions } from "../../src/codec/encode-pipeline.js";
import { createKernel } from "../../src/kernel/loader.js";
import type { DirtyLog } from "../../src/memory/guest-memory.js";
import { WasmGuestMemory } from "../../src/memory/wasm-guest-memory.js";
import { FrameType, FRAME_HEADER_BYTES } from "../../src/wire/frame.js";
import { messagePortTransport } from "../../src/transport/message-port.js";
import type { Transport } from "../../src/transport/transport.js";
import { MainThreadGuest, WorkerGuest, type Guest } from "./guest.js";
import type { GuestWorkloadOptions } from "./guest-workload.js";

/**
 * Per-page state shown by the memory map: where the page is in the dirty cycle or, from
 * SENT on, the codec of the record it was last sent as (SENT + its index in RECORD_CODECS).
 */
export const PageState = {
  UNSENT: 0,
  CLEAN: 1,
  DIRTY: 2,
  DEFERRED: 3,
  SENT: 4,
} as const;
export const PAGE_STATE_NAMES = ["unsent", "clean", "dirty", "deferred", ...RECORD_CODECS.map((c) => c.name)] as const;
export type PageStateName = (typeof PAGE_STATE_NAMES)[number];

/** The map state of a page sent as a record of each kind, by RecordKind. */
const STATE_OF_KIND: number[] = [];
RECORD_CODECS.forEach((c, i) => (STATE_OF_KIND[c.record] = PageState.SENT + i));

export interface DemoConfig {
  workload: string;
  workloadOptions: GuestWorkloadOptions;
  pages: number;
  /** Bytes per second. */
  bandwidth: number;
  mode: MigrationMode;
  selection: string;
  termination: string;
  nonConvergence: string;
  codecs: CodecOptions;
  downtimeLimitMs: number;
  /** Run the guest in a Worker on shared memory (needs cross-origin isolation). */
  worker: boolean;
}

export interface DemoResult {
  report: MigrationReport;
  destination: DestinationResult;
  /** Source and destination memories compared byte for byte after the commit. */
  identical: boolean;
  where: Guest["where"];
}

export class DemoMigration {
  readonly pageStates: Uint8Array;
  source!: MigrationSource;
  guest!: Guest;
  #src!: Transport;
  #stopped = false;
  #postcopy = false;
  #unsent: Array<{ round: number; pages: number[] }> = [];

  constructor(readonly config: DemoConfig) {
    this.pageStates = new Uint8Array(config.pages);
  }

  get report(): MigrationReport | null {
    return this.source?.report ?? null;
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
      if (this.#stopped) throw new Error("stopped");
      this.guest.start();
      onStage("migrating");
      const channel = new MessageChannel();
      this.#src = this.#tap(messagePortTransport(channel.port1));
      const dstTransport = messagePortTransport(channel.port2);
      let faulting = false;
      const dst = new MigrationDestination({
        memory: dmem,
        transport: dstTransport,
        kernel: dk,
        // post-copy: the destination guest runs and faults on pages still missing
        onActivate: () => {
          if (!this.#postcopy || faulting || this.#stopped) return;
          faulting = true;
          void this.#fault(dst, c.pages, () => faulting);
        },
      });
      this.source = new MigrationSource({
        memory: mem,
        dirtyLog: this.#watch(mem.dirtyLog()),
        transport: this.#src,
        kernel: k,
        mode: c.mode,
        codecs: c.codecs,
        maxBandwidth: c.bandwidth,
        downtimeLimitMs: c.downtimeLimitMs,
        policy: { selection: c.selection, termination: c.termination, nonConvergence: c.nonConvergence },
        onPause: () => this.guest.pause(),
        onResume: () => this.guest.resume(),
        onThrottle: (p) => this.guest.throttle(p),
      });
      // both ends settle; the source's outcome is the migration's (the destination of a
      // stopped migration fails too, only later or earlier)
      const [s, d] = await Promise.allSettled([this.source.migrate(), dst.receive()]);
      faulting = false;
      if (s.status === "rejected") throw s.reason;
      if (d.status === "rejected") throw d.reason;
      const report = s.value;
      const destination = d.value;
      const a = mem.bytes();
      const b = dmem.bytes();
      let identical = a.length === b.length;
      for (let i = 0; identical && i < a.length; i++) identical = a[i] === b[i];
      return { report, destination, identical, where: this.guest.where };
    } finally {
      this.guest.stop();
    }
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
      const to = row.deferred > 0 ? PageState.DEFERRED : PageState.CLEAN;
      for (const p of pages) if (this.pageStates[p] === PageState.DIRTY) this.pageStates[p] = to;
      return false;
    });
  }

  /** Aborts the migration: the source side closes the channel; both ends fail before the commit. */
  stop(): void {
    this.#stopped = true;
    this.#src?.close();
    this.guest?.stop();
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

  /** The dirty log, reporting each harvest to the map. */
  #watch(log: DirtyLog): DirtyLog {
    return {
      start: () => log.start(),
      stop: () => log.stop(),
      harvest: async (into) => {
        await log.harvest(into);
        for (const p of into.collect()) this.pageStates[p] = PageState.DIRTY;
      },
    };
  }

  /** The source transport, reading each frame's page records before it is transferred away. */
  #tap(t: Transport): Transport {
    const states = this.pageStates;
    let round = -1;
    const seen = (frame: Uint8Array) => {
      const type = frame[5];
      const length = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(12, true);
      const payload = frame.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length);
      if (type === FrameType.PAGES) {
        const r = pagesRound(payload);
        if (r !== round) {
          // a new round: what earlier rounds sent is now clean
          round = r;
          for (let i = 0; i < states.length; i++) if (states[i] >= PageState.SENT) states[i] = PageState.CLEAN;
        }
        for (const rec of readPageRecords(payload, states.length)) states[rec.page] = STATE_OF_KIND[rec.kind];
      } else if (type === FrameType.ROUND_END) {
        // pending pages without a record this round: deferred by the selection policy or
        // skipped as unchanged; the round's report row (pushed just after) tells which
        const left: number[] = [];
        for (let i = 0; i < states.length; i++) if (states[i] === PageState.DIRTY) left.push(i);
        const ended = (JSON.parse(new TextDecoder().decode(payload)) as { round: number }).round;
        if (left.length) this.#unsent.push({ round: ended, pages: left });
      } else if (type === FrameType.POSTCOPY_START) {
        this.#postcopy = true;
        for (let i = 0; i < states.length; i++) if (payload[i >> 3] & (1 << (i & 7))) states[i] = PageState.DIRTY;
      }
    };
    return {
      send: async (frame) => {
        seen(frame);
        return t.send(frame);
      },
      receive: () => t.receive(),
      close: () => t.close(),
      get bytesSent() {
        return (t as { bytesSent?: number }).bytesSent ?? 0;
      },
      get bytesReceived() {
        return (t as { bytesReceived?: number }).bytesReceived ?? 0;
      },
    } as Transport;
  }
}
