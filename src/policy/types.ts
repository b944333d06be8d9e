// The three pluggable pre-copy decisions and what the round driver (engine/precopy-rounds.ts)
// hands each of them.
//
//   round r:  candidates = harvest(r-1) ∪ deferred(r-1)         (r = 0: every page)
//             selection.select(ctx, {send, defer})  ──► send pages, history.markSent(send, r)
//             harvest ──► history.recordRound(harvest)
//             termination.decide(stats)  ── "continue" ─► round r + 1
//                                        ── "sync"     ─► harvest again, decide({ afterSync: true })
//                                        ── "stop"     ─► stop-and-copy: the engine sends every pending page
//             nonConvergence.check(period) each round ─► none | throttle(%) | postcopy | stop
//
// `lastRound` is true only where a caller asks a policy about the stop-and-copy round
// (simulatePolicyRounds does, to check that no policy defers there); the engine sends
// every pending page then without asking.
import type { DirtyBitmap } from "../kernel/dirty-bitmap.js";
import type { PageHistory } from "./page-history.js";

export type PolicyKind = "selection" | "termination" | "non-convergence";

/** What a page-selection policy sees for one round. */
export interface SelectionContext {
  /** Round number; 0 is the first full pass. */
  round: number;
  /**
   * Candidate pages of this round (read-only): the pages dirtied since the previous
   * harvest plus the pages deferred in the previous round; every page in round 0.
   */
  dirty: DirtyBitmap;
  /** Page history with this round's harvest already recorded as `roundsAgo` 0 (rounds ≥ 1). */
  history: PageHistory;
  /** True in round 0. */
  firstRound: boolean;
  /** True when asked about the stop-and-copy round: a policy must then send every candidate. */
  lastRound: boolean;
  /** Pages dirtied again since this round's harvest (a peek at the live log: Xen's to_skip). Optional. */
  redirtied?: DirtyBitmap;
  /** Pages of guest memory. */
  guestPages: number;
  /** Pages sent so far in the whole migration, before this round. */
  pagesSent: number;
  /**
   * Link bandwidth estimate in guest pages per second: pages the previous round sent ÷ the
   * seconds it spent sending them (not compressed bytes ÷ 4096); before that, the byte rate
   * limit ÷ 4096. 0 or absent: unknown.
   */
  bandwidthPagesPerSecond?: number;
  /** Wall (or virtual) seconds the previous round took (absent in round 0). */
  previousRoundSeconds?: number;
}

/** Caller-owned bitmaps a policy overwrites: `send ∪ defer = dirty`, disjoint. */
export interface SelectionOutput {
  send: DirtyBitmap;
  defer: DirtyBitmap;
}

export interface SelectionResult {
  sent: number;
  deferred: number;
  /** Send order when it matters (exactly the pages of `send`); otherwise ascending page order. */
  order?: Uint32Array;
  /** A short human note for the per-round report (e.g. "switched to plain pre-copy"). */
  note?: string;
  /**
   * The policy ended the round on purpose (microwiper: the accumulated rewrite rate passed
   * the bandwidth): sync as soon as the sent pages are out, without waiting for the
   * minimum round period although pages were deferred.
   */
  endRound?: boolean;
}

/** Which dirty pages to send this round and which to defer. */
export interface PageSelectionPolicy {
  readonly kind: "selection";
  readonly name: string;
  /**
   * True when the policy counts modifications since the VM started (history-threshold):
   * it wants a page history fed before the migration (MigrationSourceOptions.history), and
   * the simulator gives it a warm-up by default (sim/warm-up.ts).
   */
  readonly historySinceStart?: boolean;
  /** Fills `out`; cost: a few SIMD passes over the bitmaps plus per-policy work on dirty pages. */
  select(ctx: SelectionContext, out: SelectionOutput): SelectionResult;
  /**
   * Policies that use Xen's to_skip: Xen peeks the live log before each batch it sends, so
   * a page dirtied again while the round's earlier batches went out is skipped too. The
   * engine calls this before each batch of a round after the first, with a recent peek;
   * it returns the pages of `batch` to send now, in order. Pages held back stay pending for
   * the next round (the engine moves them from `send` to `defer`). Optional.
   */
  recheck?(batch: Uint32Array, redirtied: DirtyBitmap): Uint32Array;
  /** Forgets per-migration state (call before reusing the policy for another migration). */
  reset(): void;
  /** Frees scratch bitmaps in kernel memory. */
  dispose(): void;
}

/** Figures of a finished round, for the termination decision. */
export interface RoundStats {
  /** Round just finished (0 = the first full pass). */
  round: number;
  /** Dirty pages still to send: the latest harvest ∪ the pages deferred. */
  pendingPages: number;
  /** Bytes per page (4096). */
  pageSize: number;
  guestPages: number;
  /** Pages sent in the whole migration so far, this round included. */
  pagesSent: number;
  /** Bandwidth estimate in bytes per second (0 = unknown). */
  bandwidthBytesPerSecond: number;
  /** Longest acceptable downtime in milliseconds. */
  downtimeLimitMs: number;
  /** True when `pendingPages` comes from the extra sync this policy asked for with "sync". */
  afterSync?: boolean;
}

export type TerminationAction = "continue" | "sync" | "stop";

export interface TerminationDecision {
  /** continue iterating; sync: harvest now and decide again with `afterSync`; stop: stop-and-copy. */
  action: TerminationAction;
  /** True when stopping because the remainder fits the downtime/size target, false when a limit forced it. */
  converged: boolean;
  reason: string;
}

/** When to stop iterating. */
export interface TerminationPolicy {
  readonly kind: "termination";
  readonly name: string;
  decide(stats: RoundStats): TerminationDecision;
  reset(): void;
}

/** One dirty-sync period (QEMU: ≥ 1 s between bitmap syncs; here: what the engine uses). */
export interface PeriodStats {
  round: number;
  /** Bytes dirtied by the guest during the period (dirty pages at the sync × page size). */
  dirtiedBytes: number;
  /** Bytes sent on the link during the period. */
  sentBytes: number;
}

export type NonConvergenceDecision =
  | { action: "none" }
  | { action: "throttle"; percent: number }
  | { action: "postcopy" }
  | { action: "stop" };

/** What to do when pre-copy will not converge. */
export interface NonConvergencePolicy {
  readonly kind: "non-convergence";
  readonly name: string;
  check(period: PeriodStats): NonConvergenceDecision;
  reset(): void;
}

export type Policy = PageSelectionPolicy | TerminationPolicy | NonConvergencePolicy;
