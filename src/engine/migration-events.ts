// Typed events of a migration, for progress displays and tools: MigrationSource and
// MigrationDestination each carry an EventHub (`source.on("progress", …)`). Listeners run
// synchronously in the engine's thread; one that throws is reported on `listenerErrors`
// and never fails the migration.
import type { RoundRow } from "./report.js";

/** Where the source stands, as a progress display names it. */
export type MigrationPhase = "setup" | "precopy" | "stop-and-copy" | "postcopy" | "commit" | "done";

/**
 * A snapshot of a running migration (the source's view; QEMU's `query-migrate` fields):
 * sizes in bytes, times in milliseconds, rates as named.
 */
export interface MigrationProgress {
  phase: MigrationPhase;
  /** The pre-copy round being sent (stop-and-copy and post-copy count on). */
  round: number;
  elapsedMs: number;
  /** Frame bytes put on the network so far (every connection and data channel). */
  transferred: number;
  /** Guest RAM size. */
  total: number;
  /** Dirty bytes still to send (pages dirty or deferred, not yet sent, × page size). */
  remaining: number;
  /** Page records sent so far. */
  pagesSent: number;
  /** Average throughput so far, Mbit/s. */
  mbps: number;
  /** Pages dirtied per second, over the harvests so far. */
  dirtyPagesRate: number;
  /** What stopping now would cost: remaining ÷ the last round's bandwidth, ms (QEMU's expected-downtime). */
  expectedDowntimeMs: number;
}

/** What the destination has received so far. */
export interface DestinationProgress {
  state: string;
  /** The last pre-copy round whose pages are all in (−1 before the first). */
  round: number;
  elapsedMs: number;
  pagesReceived: number;
  bytesReceived: number;
  /** Post-copy: pages the guest here still misses. */
  missingPages: number;
}

export interface SourceEvents {
  /** The destination accepted: the mode, features and data channels agreed. */
  handshake: { mode: string; features: string[]; channels: number; pageCount: number };
  "round-start": { round: number; phase: string; pages: number };
  "round-end": { row: RoundRow };
  /** At most every `progressIntervalMs`, at each round's end and once at the end. */
  progress: { progress: MigrationProgress };
  /** The guest is paused on the source (stop-and-copy starts). */
  pause: { pendingPages: number };
  /** Post-copy: ownership moved to the destination (the decision in post-copy). */
  postcopy: { missingPages: number };
  /** The decision: from here the source never runs the guest again. */
  commit: Record<string, never>;
  /** The destination runs the guest. */
  activate: { totalTimeMs: number; downtimeMs: number };
  /** The migration ended before the decision; the source runs the guest. */
  abort: { code: string; message: string };
  /** A lost connection was replaced (post-copy recovery, a commit delivered again). */
  recovery: { count: number };
  /** A lost connection could not be replaced after the decision: neither side runs the guest until resolved. */
  "in-doubt": { code: string; message: string };
}

export interface DestinationEvents {
  handshake: { mode: string; channels: number; pageCount: number };
  "round-end": { round: number };
  progress: { progress: DestinationProgress };
  /** The digest matched and the memory is durable: the commit acknowledgement went out. */
  prepared: { digest: string };
  /** Post-copy: the guest runs here from now on. */
  postcopy: { missingPages: number };
  /** Post-copy: the guest touched a page that is not here yet (a request went to the source). */
  fault: { page: number };
  activate: Record<string, never>;
  abort: { code: string; message: string };
  recovery: { count: number };
  "in-doubt": { code: string; message: string };
}

type Listener<T> = (event: T) => void;

/** A typed event emitter (browser and Node alike; no EventTarget subclassing). */
export class EventHub<M extends object> {
  readonly #listeners = new Map<keyof M, Set<Listener<never>>>();
  /** Errors thrown by listeners (the migration goes on regardless). */
  readonly listenerErrors: unknown[] = [];

  /** Calls `fn` for every event of `type`; returns a function that stops it. */
  on<K extends keyof M>(type: K, fn: Listener<M[K] & { type: K }>): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(fn as Listener<never>);
    return () => void set!.delete(fn as Listener<never>);
  }

  /** True when someone listens to `type` (work to build the event can be skipped otherwise). */
  has(type: keyof M): boolean {
    return (this.#listeners.get(type)?.size ?? 0) > 0;
  }

  emit<K extends keyof M>(type: K, event: M[K]): void {
    const set = this.#listeners.get(type);
    if (!set?.size) return;
    const e = { type, ...event } as never;
    for (const fn of set) {
      try {
        (fn as Listener<unknown>)(e);
      } catch (err) {
        if (this.listenerErrors.length < 16) this.listenerErrors.push(err);
      }
    }
  }
}
