// The pre-copy round driver: the one loop that runs the three policies over a dirty log.
// MigrationSource runs it over the wire; simulatePolicyRounds (sim/policy-rounds.ts) runs
// it over recorded write sets. The data path of one round is a straight line:
//
//   dirty log ──► selection policy ──► sendRound(send, order) ──► (pipeline → wire → transport)
//
//   round r:  peek(redirtied)                                  (the live log, Xen's to_skip)
//             selection.select({ dirty: pending, history, redirtied }, { send, defer })
//             sendRound(send) → bytes;  history.markSent(send, r)
//               before each batch: peek again, selection.recheck(batch) → send now / defer
//             deferred anything? wait until minRoundMs after the round's start (the next sync)
//             harvest → history.recordRound(harvest);  pending = harvest ∪ defer
//             termination.decide(stats) ── "continue" ─► round r + 1
//                                       ── "sync"     ─► harvest again, decide({ afterSync: true })
//                                       ── "stop"     ─► return (stop-and-copy follows)
//             nonConvergence.check(period) ─► none | throttle(%) | postcopy | stop
//             r + 1 = maxRounds ─► return
//
// On return `pending` holds every page still to send (dirty or deferred).
//
// Rounds take time. QEMU syncs the dirty log whenever its list of dirty pages is
// exhausted, and measures its dirty rate and throttles over periods of at least 1 s
// (migration_bitmap_sync). A round that sent every candidate has exhausted its list and
// syncs at once, as QEMU does; a round that held pages back has not, so it lasts until
// the next periodic sync, `minRoundMs` (default 1000, QEMU's period) after it started.
// Without this a round that sends nothing takes no time and "unmodified for 2 rounds"
// passes instantly. A policy may end its round early on purpose (`endRound`: microwiper).
import { PagewireRangeError } from "../errors.js";
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
  /**
   * Call before sending each batch of the round: returns the pages of `batch` to send now
   * (the policy's to_skip, peeked again); the others stay pending. Absent: send them all.
   */
  skip?: (batch: Uint32Array) => Uint32Array;
}

/** Shortest time between two peeks at the live log while a round is sent (a peek copies the bitmap). */
const PEEK_EVERY_SECONDS = 0.005;

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
  /**
   * Per-page history the selection policy reads; the driver makes (and frees) one when
   * absent. Give one already fed the harvests seen before the migration (a warm-up) for
   * policies that count modifications since the log started (history-threshold).
   */
  history?: PageHistory;
  /**
   * Shortest round, ms, for a round that deferred pages (default 1000): it lasts until the
   * next periodic dirty-log sync; see the file header. 0: rounds end when their pages are out.
   */
  minRoundMs?: number;
  /** Pages still to send; every page at the start. Updated in place. */
  pending: DirtyBitmap;
  /** Sends one round's pages; returns the bytes put on the link. */
  sendRound(plan: RoundPlan): Promise<number>;
  /** Bandwidth estimate in bytes/s: before the first round (`sent` null) and after each. */
  estimateBandwidth(sent: { bytes: number; seconds: number } | null): number;
  /**
   * Guest pages per second the policies are told (`bandwidthPagesPerSecond`), after a round
   * that sent pages; default: pages sent ÷ the seconds spent sending them.
   */
  estimatePageRate?(sent: { pages: number; seconds: number }): number;
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
  /** What ended pre-copy, in words for reports: "qemu rule", "round cap", "force-stop", "post-copy switch" … */
  stoppedBy: string;
}

/** Runs pre-copy rounds until a policy stops them; see the file header. */
export async function runPrecopyRounds(o: PrecopyRoundsOptions): Promise<PrecopyOutcome> {
  const { kernel: k, pageCount, dirtyLog: log, selection, termination, nonConvergence, pending } = o;
  const minRoundSeconds = minRoundSecondsOf(o.minRoundMs);
  if (o.history && (o.history.kernel !== k || o.history.pageCount !== pageCount)) {
    throw new PagewireRangeError(
      "BITMAP_MISMATCH",
      `pre-copy: the warm-up history must share the guest's kernel and page count (${pageCount} vs ${o.history.pageCount})`,
    );
  }
  const history = o.history ?? new PageHistory(k, pageCount);
  const send = new DirtyBitmap(k, pageCount);
  const defer = new DirtyBitmap(k, pageCount);
  const harvest = new DirtyBitmap(k, pageCount);
  const redirtied = new DirtyBitmap(k, pageCount);
  const outcome: PrecopyOutcome = { rounds: 0, toPostcopy: false, dirtiedPages: 0, seconds: 0, stoppedBy: "" };
  let throttledTo = 0; // the last throttle asked for: a stop after it owes something to the throttle
  const stop = (d: PolicyDecision, cause: string) => {
    outcome.stoppedBy = throttledTo ? `${cause} after throttle to ${throttledTo} %` : cause;
    o.decisions.push({ ...d, stoppedBy: outcome.stoppedBy });
  };
  let previousSeconds: number | undefined;
  let bandwidth = o.estimateBandwidth(null);
  let pageRate = bandwidth > 0 ? bandwidth / PAGE_SIZE : 0;
  const pageRateOf = o.estimatePageRate ?? ((s: { pages: number; seconds: number }) => s.pages / s.seconds);
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
          bandwidthPagesPerSecond: pageRate > 0 ? pageRate : undefined,
          previousRoundSeconds: previousSeconds,
        },
        { send, defer },
      );
      o.onRound?.({ round, candidates: pending, send, defer, result });
      if (result.note) o.decisions.push({ round, kind: "selection", decision: result.note });
      const sendStart = o.clock.now();
      let held = 0;
      let peekedAt = -Infinity;
      // Xen's to_skip, peeked again before each batch: pages re-dirtied while the round is sent
      const skip =
        selection.recheck && log.peek && round > 0
          ? (batch: Uint32Array) => {
              if (o.clock.now() - peekedAt >= PEEK_EVERY_SECONDS) {
                log.peek!(redirtied);
                peekedAt = o.clock.now();
              }
              const keep = selection.recheck!(batch, redirtied);
              if (keep.length === batch.length) return batch;
              for (const p of batch)
                if (redirtied.get(p) && send.get(p)) {
                  send.clear(p);
                  defer.set(p);
                  held++;
                }
              return keep;
            }
          : undefined;
      const sentBytes = await o.sendRound({
        round,
        send,
        order: result.order,
        candidates,
        deferred: result.deferred,
        skip,
      });
      const sendSeconds = o.clock.now() - sendStart;
      const sentPages = result.sent - held;
      const deferredPages = result.deferred + held;
      if (sentPages > 0 && sendSeconds > 0) pageRate = pageRateOf({ pages: sentPages, seconds: sendSeconds });
      history.markSent(send, round);
      outcome.rounds = round + 1;
      // pages held back: the list is not exhausted, the round lasts until the next periodic sync
      const rest = t0 + minRoundSeconds - o.clock.now();
      const waited = deferredPages > 0 && !result.endRound && rest > 0 ? rest : 0;
      if (waited) await o.clock.sleep(waited);
      // the pages dirtied while this round was sent, plus the deferred ones, are what is pending
      const dirtied = await sync();
      history.recordRound(harvest);
      pending.copyFrom(harvest).or(defer);
      const seconds = o.clock.now() - t0;
      previousSeconds = seconds;
      outcome.seconds += seconds;
      // the link was idle while the round waited for its sync: that time says nothing of its
      // rate, nor does a round that sent no page
      if (sentPages > 0) bandwidth = o.estimateBandwidth({ bytes: sentBytes, seconds: seconds - waited });
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
          stop(
            { round, kind: "termination", decision: `${termination.name}: ${decision.reason}`, inputs: inputs() },
            `${termination.name} ${decision.converged ? "rule" : "limit"}`,
          );
          break;
        }
      }
      // a round in which the selection policy chose to send nothing says nothing about
      // convergence (the dirtied/sent test would count it as non-converging every time)
      const nc =
        (sentPages > 0 ? nonConvergence?.check({ round, dirtiedBytes: dirtied * PAGE_SIZE, sentBytes }) : null) ??
        ({ action: "none" } as const);
      if (nc.action === "throttle") {
        o.decisions.push({
          round,
          kind: "non-convergence",
          decision: `${nonConvergence!.name}: throttle guest to ${nc.percent} %`,
          inputs: inputs(),
        });
        throttledTo = nc.percent;
        await o.onThrottle?.(nc.percent);
      } else if (nc.action === "postcopy" || nc.action === "stop") {
        outcome.toPostcopy = nc.action === "postcopy";
        stop(
          { round, kind: "non-convergence", decision: `${nonConvergence!.name}: ${nc.action}`, inputs: inputs() },
          nc.action === "postcopy" ? "post-copy switch" : nonConvergence!.name,
        );
        break;
      }
      if (round + 1 >= o.maxRounds) {
        stop(
          { round, kind: "termination", decision: `stopped after maxRounds = ${o.maxRounds}`, inputs: inputs() },
          "round cap",
        );
        break;
      }
    }
  } finally {
    for (const b of [send, defer, harvest, redirtied]) b.dispose();
    if (!o.history) history.dispose();
  }
  return outcome;
}

/** Default shortest round for a round that deferred pages: QEMU's 1 s sync period. */
export const DEFAULT_MIN_ROUND_MS = 1000;

function minRoundSecondsOf(ms: number | undefined): number {
  const v = ms ?? DEFAULT_MIN_ROUND_MS;
  if (!(v >= 0 && Number.isFinite(v)))
    throw new PagewireRangeError("MIN_ROUND", `minRoundMs must be a finite number ≥ 0, got ${ms}`);
  return v / 1000;
}
