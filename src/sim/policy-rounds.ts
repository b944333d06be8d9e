// Pre-copy policies over recorded write sets, for tests, benchmarks and the demo: the
// engine's own round driver (engine/precopy-rounds.ts) runs over a dirty log that replays
// `writes`, and every page carries a content version (bumped by each write) so that the
// end can check that every page reached the destination in its latest version.
//
//   round r (pre-copy, one virtual second):
//     the driver selects and sends; dest[p] = version[p] for every sent page
//     the guest writes writes[r] during the round: the log's peek shows them (Xen's
//     to_skip), its harvest returns them and bumps their versions
//     termination (optional) decides; the last entry of `writes` ends pre-copy
//   stop-and-copy (round R): select({ lastRound: true }) over what is pending; every
//     candidate is sent whatever the policy answered (a policy that still defers shows up
//     in `deferredAtStop`); the guest is paused.
import { PagewireRangeError } from "../errors.js";
import { DirtyBitmap } from "../kernel/dirty-bitmap.js";
import { PAGE_SIZE, type Kernel } from "../kernel/kernel.js";
import type { DirtyLog } from "../memory/guest-memory.js";
import { runPrecopyRounds } from "../engine/precopy-rounds.js";
import { PageHistory } from "../policy/page-history.js";
import type { PageSelectionPolicy, TerminationDecision, TerminationPolicy } from "../policy/types.js";

export interface SimulationOptions {
  kernel: Kernel;
  pageCount: number;
  /** writes[r]: the pages the guest writes during pre-copy round r, in order. */
  writes: readonly (readonly number[])[];
  selection: PageSelectionPolicy;
  /** Decides after each round; default: run one pre-copy round per entry of `writes`. */
  termination?: TerminationPolicy;
  /** Give the policy the round's writes as `redirtied` (the Xen to_skip peek). Default true. */
  peek?: boolean;
  /** Link bandwidth in pages per round (a round lasts one virtual second). Default: unknown. */
  bandwidthPagesPerRound?: number;
  /**
   * Dirty sets seen before the migration (one per sync of a warm-up), recorded in the page
   * history before round 0, oldest first: what the engine's warm-up history holds.
   */
  warmup?: readonly (readonly number[])[];
  /** Downtime limit for termination policies, ms (default 300). */
  downtimeLimitMs?: number;
}

export interface SimulatedRound {
  round: number;
  candidates: number[];
  sent: number[];
  deferred: number[];
  /** The policy's send order, when it gave one. */
  order?: number[];
  note?: string;
  decision?: TerminationDecision;
}

export interface SimulationResult {
  /** Pre-copy rounds, then the stop-and-copy round (last entry, `lastRound`). */
  rounds: SimulatedRound[];
  /** Pages whose latest content never reached the destination (must be empty). */
  lost: number[];
  /** Pages the policy tried to defer in the stop-and-copy round (must be 0). */
  deferredAtStop: number;
  pagesSent: number;
}

/** A dirty log that replays `writes`: round r's writes are seen by the peek during round r and returned by the first harvest after it. */
class RecordedWritesLog implements DirtyLog {
  round = 0;
  #sent = false;
  peek?: (into: DirtyBitmap) => void;

  constructor(
    readonly writes: readonly (readonly number[])[],
    readonly version: Uint32Array,
    peek: boolean,
  ) {
    if (peek) this.peek = (into) => fill(into, this.writes[this.round] ?? []);
  }

  start(): void {}
  stop(): void {}

  /** The round's pages went out: the next harvest returns the writes made meanwhile. */
  roundSent(): void {
    this.#sent = true;
  }

  harvest(into: DirtyBitmap): void {
    if (!this.#sent) return void into.clearAll(); // a sync within the round: nothing new was written
    const writes = this.writes[this.round] ?? [];
    fill(into, writes);
    for (const p of writes) this.version[p]++;
    this.round++;
    this.#sent = false;
  }
}

function fill(b: DirtyBitmap, pages: readonly number[]): void {
  b.clearAll();
  for (const p of pages) b.set(p);
}

/** Drives `selection` (and optionally `termination`) over `writes`; see the file header. */
export async function simulatePolicyRounds(o: SimulationOptions): Promise<SimulationResult> {
  const { kernel: k, pageCount: n } = o;
  for (const w of [...o.writes, ...(o.warmup ?? [])])
    for (const p of w) {
      if (!(p >= 0 && p < n && Number.isInteger(p)))
        throw new PagewireRangeError("PAGE_INDEX", `simulatePolicyRounds: write to page ${p} is outside 0..${n}`);
    }
  const version = new Uint32Array(n);
  const dest = new Int32Array(n).fill(-1);
  const log = new RecordedWritesLog(o.writes, version, o.peek !== false);
  const history = new PageHistory(k, n);
  const pending = new DirtyBitmap(k, n);
  const send = new DirtyBitmap(k, n),
    defer = new DirtyBitmap(k, n);
  const rounds: SimulatedRound[] = [];
  let pagesSent = 0;
  let now = 0; // virtual seconds: a round lasts one
  const bandwidth = (o.bandwidthPagesPerRound ?? 0) * PAGE_SIZE;
  o.selection.reset();
  o.termination?.reset();
  try {
    for (const w of o.warmup ?? []) {
      fill(pending, w);
      history.recordRound(pending);
    }
    pending.setRange(0, n);
    await runPrecopyRounds({
      kernel: k,
      pageCount: n,
      dirtyLog: log,
      selection: o.selection,
      termination: o.termination,
      history,
      pending,
      clock: { now: () => now, sleep: async (s) => void (now += s) },
      maxRounds: Math.max(1, o.writes.length),
      downtimeLimitMs: o.downtimeLimitMs ?? 300,
      decisions: [],
      estimateBandwidth: () => bandwidth,
      estimatePageRate: () => o.bandwidthPagesPerRound ?? 0,
      pagesSent: () => pagesSent,
      onRound: ({ round, candidates, send: s, defer: d, result }) => {
        rounds.push({
          round,
          candidates: Array.from(candidates.collect()),
          sent: Array.from(s.collect()),
          deferred: Array.from(d.collect()),
          order: result.order && Array.from(result.order),
          note: result.note,
        });
      },
      onDecision: (round, decision) => void (rounds[round].decision = decision),
      sendRound: async ({ send: s }) => {
        const sent = s.collect();
        for (const p of sent) dest[p] = version[p];
        pagesSent += sent.length;
        now += 1;
        log.roundSent();
        return sent.length * PAGE_SIZE;
      },
    });
    // stop-and-copy: the policy is asked once more, then every candidate goes
    const r = rounds.length;
    const res = o.selection.select(
      { round: r, dirty: pending, history, firstRound: false, lastRound: true, guestPages: n, pagesSent },
      { send, defer },
    );
    const all = Array.from(pending.collect());
    rounds.push({
      round: r,
      candidates: all,
      sent: Array.from(send.collect()),
      deferred: Array.from(defer.collect()),
      note: res.note,
    });
    for (const p of all) dest[p] = version[p];
    pagesSent += all.length;
    const lost: number[] = [];
    for (let p = 0; p < n; p++) if (dest[p] !== version[p]) lost.push(p);
    return { rounds, lost, deferredAtStop: res.deferred, pagesSent };
  } finally {
    for (const b of [pending, send, defer]) b.dispose();
    history.dispose();
  }
}
