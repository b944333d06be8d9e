// The guest after the switch-over, running on the destination in virtual time.
//
//   loop, one quantum q of guest time at a time (default 1 ms):
//     the workload runs q into a recorder (its writes, reads and identical rewrites, in order)
//     each access in order: a page still missing → fetch it (PAGE_REQUEST over the simulated
//       link, queued behind the source's background push) and stall until it arrives;
//       then the write lands in destination memory
//     the quantum's work takes q of virtual time
//   guest work = quanta run; stall = virtual time spent waiting for pages
//
// The accesses of one quantum happen at its start, so a stall delays the rest of the
// quantum, as a faulting vCPU would. Correctness check: at its first touch here, a page
// must hold the source's content at the pause (the source stays paused, its memory frozen);
// pages never touched must equal it at the end.
import { PAGE_SIZE } from "../kernel/kernel.js";
import type { Clock } from "../util/clock.js";
import type { GuestWriter, Workload } from "../workload/workload.js";

/** What a workload may call besides write(): the simulator's guests understand these. */
export interface GuestAccess extends GuestWriter {
  /** A read of `length` bytes at `offset`: touches its pages (post-copy: faults on missing ones). */
  read?(offset: number, length: number): void;
  /** Rewrites page `page` with the bytes it holds: the dirty log sees it, the content does not change. */
  rewrite?(page: number): void;
}

/** The memory the destination guest runs in (WasmGuestMemory). */
export interface DestinationGuestMemory {
  readonly pageCount: number;
  write(offset: number, data: Uint8Array): void;
  pageView(page: number): Uint8Array;
}

export interface DestinationGuestOptions {
  workload: Workload;
  memory: DestinationGuestMemory;
  /** The source's memory, frozen at the pause: what every page must hold when first touched here. */
  reference: DestinationGuestMemory;
  clock: Clock;
  /** True while some page has not arrived (post-copy); false lets the guest skip the fetch calls. */
  anyMissing(): boolean;
  /** Resolves once `page` is present, requesting it when missing (MigrationDestination.ensurePage). */
  fetch(page: number): Promise<void>;
  /** Guest time per step, seconds (default 0.001). */
  quantumSeconds?: number;
}

/** What the destination guest did. */
export interface DestinationGuestStats {
  /** Virtual time the guest started here, seconds. */
  startedAt: number;
  /** Guest seconds of work done here. */
  workSeconds: number;
  /** Virtual seconds spent waiting for missing pages. */
  stallSeconds: number;
  /** Accesses that waited for their page (a fetch that takes no virtual time is not counted). */
  faults: number;
  /** The longest single wait, seconds. */
  maxStallSeconds: number;
  /** Pages whose content at the first touch differed from the source's at the pause (must be 0). */
  mismatched: number;
}

type Access = { kind: "write"; offset: number; data: Uint8Array } | { kind: "read"; offset: number; length: number };

/** Records a quantum's accesses in order (write data copied: workloads reuse buffers). */
class AccessRecorder implements GuestAccess {
  readonly accesses: Access[] = [];
  constructor(readonly pageCount: number) {}
  write(offset: number, data: Uint8Array): void {
    this.accesses.push({ kind: "write", offset, data: data.slice() });
  }
  read(offset: number, length: number): void {
    this.accesses.push({ kind: "read", offset, length });
  }
  rewrite(page: number): void {
    // the bytes are read when the access runs (the page may arrive meanwhile): a read touches it all the same
    this.accesses.push({ kind: "read", offset: page * PAGE_SIZE, length: PAGE_SIZE });
  }
}

export class DestinationGuest {
  readonly stats: DestinationGuestStats;
  readonly #o: DestinationGuestOptions;
  readonly #touched: Uint8Array;
  readonly #q: number;
  #stopped = false;
  #maybeMissing = false;
  #done: Promise<void> | null = null;

  constructor(o: DestinationGuestOptions) {
    this.#o = o;
    this.#q = o.quantumSeconds ?? 0.001;
    this.#touched = new Uint8Array(o.memory.pageCount);
    this.stats = { startedAt: NaN, workSeconds: 0, stallSeconds: 0, faults: 0, maxStallSeconds: 0, mismatched: 0 };
  }

  /** Starts the guest here (at POSTCOPY_START, or at the activation after pre-copy). */
  start(): void {
    if (this.#done) return;
    this.stats.startedAt = this.#o.clock.now();
    this.#done = this.#loop();
  }

  /** Stops the guest at its next quantum boundary; resolves once it stopped. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#done;
  }

  /** True when every page never touched here equals the reference (call after stop). */
  untouchedPagesMatch(): boolean {
    const { memory, reference } = this.#o;
    const B = (globalThis as { Buffer?: { compare(x: Uint8Array, y: Uint8Array): number } }).Buffer;
    for (let p = 0; p < memory.pageCount; p++) {
      if (this.#touched[p]) continue;
      const a = memory.pageView(p);
      const b = reference.pageView(p);
      if (B ? B.compare(a, b) !== 0 : !samePage(a, b)) return false;
    }
    return true;
  }

  async #loop(): Promise<void> {
    const o = this.#o;
    const q = this.#q;
    while (!this.#stopped) {
      const rec = new AccessRecorder(o.memory.pageCount);
      o.workload.run(q, rec);
      this.#maybeMissing = o.anyMissing();
      for (const a of rec.accesses) {
        const length = a.kind === "write" ? a.data.length : a.length;
        if (length <= 0) continue;
        const first = Math.floor(a.offset / PAGE_SIZE);
        const last = Math.floor((a.offset + length - 1) / PAGE_SIZE);
        for (let p = first; p <= last; p++) await this.#touch(p);
        if (a.kind === "write") o.memory.write(a.offset, a.data);
      }
      this.stats.workSeconds += q;
      await o.clock.sleep(q);
    }
  }

  async #touch(page: number): Promise<void> {
    const o = this.#o;
    const s = this.stats;
    if (this.#maybeMissing) {
      // a present page resolves at once; a missing one costs at least a request's latency
      const t0 = o.clock.now();
      await o.fetch(page);
      const waited = o.clock.now() - t0;
      if (waited > 0) {
        s.faults++;
        s.stallSeconds += waited;
        if (waited > s.maxStallSeconds) s.maxStallSeconds = waited;
        this.#maybeMissing = o.anyMissing();
      }
    }
    if (!this.#touched[page]) {
      this.#touched[page] = 1;
      if (!samePage(o.memory.pageView(page), o.reference.pageView(page))) s.mismatched++;
    }
  }
}

function samePage(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
