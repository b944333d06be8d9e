// The pre-copy round driver: the one loop that runs the three policies over a dirty log.
// MigrationSource runs it over the wire; simulatePolicyRounds (sim/policy-rounds.ts) runs
// it over recorded write sets. The data path of one round is a straight line:
//
//   dirty log ──► selection policy ──► sendRound(send, order) ──► (pipeline → wire → transport)
//
//   round r:  peek(redirtied)                                  (the live log, Xen's to_skip)
//             selection.select({ dirty: pending, history, redirtied }, { send, defer })
//             sendRound(send) → bytes;  history.markSent(send, r)
//             harvest → history.recordRound(harvest);  pending = harvest ∪ defer
//             termination.decide(stats) ── "continue" ─► round r + 1
//                                       ── "sync"     ─► harvest again, decide({ afterSync: true })
//                                       ── "stop"     ─► return (stop-and-copy follows)
//             nonConvergence.check(period) ─► none | throttle(%) | postcopy | stop
//             r + 1 = maxRounds ─► return
//
// On return `pending` holds every page still to send (dirty or deferred).
import { DirtyBitmap } from "../kernel/dirty-bitmap.js";
import { PAGE_SIZE, type Kernel } from "../kernel/kernel.js";
import type { DirtyLog } from "../memory/guest-memory.js";
import { PageHistory } from "../policy/page-history.js";
import type {
  NonConvergencePolicy,
  PageSelectionPolicy,
  SelectionResult,
  TerminationDecision,
  TerminationPolicy,
} from "../policy/types.js";
import type { Clock } from "../util/clock.js";
import type { PolicyDecision } from "./report.js";

/** The pages one round sends, as the selection policy chose them. */
export interface RoundPlan {
  round: number;
  /** Pages to send (caller may read, not keep). */
  send: DirtyBitmap;
  /** The policy's send order, when it gave one (exactly the pages of `send`). */
  order?: Uint32Array;
  /** Candidates of the round (pending pages before selection). */
  candidates: number;
  deferred: number;
}

export interface PrecopyRoundsOptions {
  kernel: Kernel;
  pageCount: number;
  dirtyLog: DirtyLog;
  /** Passed to the log's start (the session's digest seed). */
  logSession?: { digestSeed: bigint };
  selection: PageSelectionPolicy;
  /** Absent: iterate until maxRounds. */
  termination?: TerminationPolicy;
  nonConvergence?: NonConvergencePolicy;
  clock: Clock;
  maxRounds: number;
  downtimeLimitMs: number;
  /** Per-page history the selection policy reads; the driver makes (and frees) one when absent. */
  history?: PageHistory;
  /** Pages still to send; every page at the start. Updated in place. */
  pending: DirtyBitmap;
  /** Sends one round's pages; returns the bytes put on the link. */
  sendRound(plan: RoundPlan): Promise<number>;
  /** Bandwidth estimate in bytes/s: before the first round (`sent` null) and after each. */
  estimateBandwidth(sent: { bytes: number; seconds: number } | null): number;
  /** Pages sent in the whole migration so far. */
  pagesSent(): number;
  /** Policy decisions worth reporting are pushed here. */
  decisions: PolicyDecision[];
  onThrottle?(percent: number): void | Promise<void>;
  /** Called after each harvest (QEMU's dirty-sync-count) with the pages it found dirty. */
  onSync?(dirtiedPages: number): void;
  /** Called once the dirty log started. */
  onLogStart?(): void;
  /** Observes each round: its selection result, and the termination decision once taken. */
  onRound?(round: {
    round: number;
    candidates: DirtyBitmap;
    send: DirtyBitmap;
    defer: DirtyBitmap;
    result: SelectionResult;
  }): void;
  onDecision?(round: number, decision: TerminationDecision): void;
}

export interface PrecopyOutcome {
  rounds: number;
  /** The non-convergence policy asked to switch to post-copy. */
  toPostcopy: boolean;
  /** Pages the log reported dirty over all harvests, and the seconds pre-copy took. */
  dirtiedPages: number;
  seconds: number;
}

/** Runs pre-copy rounds until a policy stops them; see the file header. */
export async function runPrecopyRounds(o: PrecopyRoundsOptions): Promise<PrecopyOutcome> {
  const { kernel: k, pageCount, dirtyLog: log, selection, termination, nonConvergence, pending } = o;
  const history = o.history ?? new PageHistory(k, pageCount);
  const send = new DirtyBitmap(k, pageCount);
  const defer = new DirtyBitmap(k, pageCount);
  const harvest = new DirtyBitmap(k, pageCount);
  const redirtied = new DirtyBitmap(k, pageCount);
  const outcome: PrecopyOutcome = { rounds: 0, toPostcopy: false, dirtiedPages: 0, seconds: 0 };
  let previousSeconds: number | undefined;
  let bandwidth = o.estimateBandwidth(null);
  const sync = async () => {
    await log.harvest(harvest);
    const n = harvest.count();
    o.onSync?.(n);
    outcome.dirtiedPages += n;
    return n;
  };
  log.start(o.logSession);
  o.onLogStart?.();
  try {
    for (let round = 0; ; round++) {
      const t0 = o.clock.now();
      const candidates = pending.count();
      if (log.peek) log.peek(redirtied); // dirtied again since the harvest (Xen's to_skip)
      const result = selection.select(
        {
          round,
          dirty: pending,
          history,
          firstRound: round === 0,
          lastRound: false,
          guestPages: pageCount,
          redirtied: log.peek ? redirtied : undefined,
          pagesSent: o.pagesSent(),
          bandwidthPagesPerSecond: bandwidth > 0 ? bandwidth / PAGE_SIZE : undefined,
          previousRoundSeconds: previousSeconds,
        },
        { send, defer },
      );
      o.onRound?.({ round, candidates: pending, send, defer, result });
      if (result.note) o.decisions.push({ round, kind: "selection", decision: result.note });
      const sentBytes = await o.sendRound({ round, send, order: result.order, candidates, deferred: result.deferred });
      history.markSent(send, round);
      outcome.rounds = round + 1;
      // the pages dirtied while this round was sent, plus the deferred ones, are what is pending
      const dirtied = await sync();
      history.recordRound(harvest);
      pending.copyFrom(harvest).or(defer);
      const seconds = o.clock.now() - t0;
      previousSeconds = seconds;
      outcome.seconds += seconds;
      bandwidth = o.estimateBandwidth({ bytes: sentBytes, seconds });
      const limitMs = o.downtimeLimitMs;
      const inputs = () => ({
        pendingPages: pending.count(),
        bandwidthBytesPerSecond: Math.round(bandwidth),
        downtimeLimitMs: limitMs,
      });
      if (termination) {
        const stats = {
          round,
          pageSize: PAGE_SIZE,
          guestPages: pageCount,
          pagesSent: o.pagesSent(),
          bandwidthBytesPerSecond: bandwidth,
          downtimeLimitMs: limitMs,
        };
        let decision = termination.decide({ ...stats, pendingPages: pending.count() });
        if (decision.action === "sync") {
          await sync();
          pending.or(harvest);
          decision = termination.decide({ ...stats, pendingPages: pending.count(), afterSync: true });
        }
        o.onDecision?.(round, decision);
        if (decision.action === "stop") {
          o.decisions.push({
            round,
            kind: "termination",
            decision: `${termination.name}: ${decision.reason}`,
            inputs: inputs(),
          });
          break;
        }
      }
      const nc = nonConvergence?.check({ round, dirtiedBytes: dirtied * PAGE_SIZE, sentBytes }) ?? { action: "none" };
      if (nc.action === "throttle") {
        o.decisions.push({
          round,
          kind: "non-convergence",
          decision: `${nonConvergence!.name}: throttle guest to ${nc.percent} %`,
          inputs: inputs(),
        });
        await o.onThrottle?.(nc.percent);
      } else if (nc.action === "postcopy" || nc.action === "stop") {
        outcome.toPostcopy = nc.action === "postcopy";
        o.decisions.push({
          round,
          kind: "non-convergence",
          decision: `${nonConvergence!.name}: ${nc.action}`,
          inputs: inputs(),
        });
        break;
      }
      if (round + 1 >= o.maxRounds) {
        o.decisions.push({
          round,
          kind: "termination",
          decision: `stopped after maxRounds = ${o.maxRounds}`,
          inputs: inputs(),
        });
        break;
      }
    }
  } finally {
    for (const b of [send, defer, harvest, redirtied]) b.dispose();
    if (!o.history) history.dispose();
  }
  return outcome;
}
