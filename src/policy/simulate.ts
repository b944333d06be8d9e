// A minimal pre-copy round driver over recorded write sets, for tests, benchmarks and the
// demo: every page has a content version (bumped by each write), the destination keeps
// the version it last received, and at the end every page must hold the source's latest.
//
//   round r (pre-copy):
//     candidates = r = 0 ? every page : harvest(writes[r-1]) ∪ deferred(r-1)
//     history.recordRound(harvest)                                   (r ≥ 1)
//     select(ctx, { send, defer }) → dest[p] = version[p] for p in send; markSent(send, r)
//     the guest writes writes[r]: version[p]++   (peeked by the policy as `redirtied`)
//     termination.decide(stats) → "sync" re-decides with afterSync; "stop" or the last
//     entry of `writes` ends pre-copy
//   stop-and-copy (round R): candidates = harvest(writes[R-1]) ∪ deferred(R-1);
//     select({ lastRound: true }); every candidate is sent whatever the policy answered
//     (a policy that still defers shows up in `deferredAtStop`); the guest is paused.
import { PagewireRangeError } from "../errors.js";
import { DirtyBitmap } from "../kernel/dirty-bitmap.js";
import { PAGE_SIZE, type Kernel } from "../kernel/kernel.js";
import { PageHistory } from "./page-history.js";
import type { PageSelectionPolicy, TerminationDecision, TerminationPolicy } from "./types.js";

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

/** Drives `selection` (and optionally `termination`) over `writes`; see the file header. */
export function simulatePolicyRounds(o: SimulationOptions): SimulationResult {
  const { kernel: k, pageCount: n } = o;
  for (const w of o.writes) for (const p of w) {
    if (!(p >= 0 && p < n && Number.isInteger(p))) throw new PagewireRangeError("PAGE_INDEX", `simulatePolicyRounds: write to page ${p} is outside 0..${n}`);
  }
  const history = new PageHistory(k, n);
  const cand = new DirtyBitmap(k, n), send = new DirtyBitmap(k, n), defer = new DirtyBitmap(k, n);
  const harvest = new DirtyBitmap(k, n), peek = new DirtyBitmap(k, n);
  const version = new Uint32Array(n);
  const dest = new Int32Array(n).fill(-1);
  const rounds: SimulatedRound[] = [];
  let pagesSent = 0;
  const bandwidth = o.bandwidthPagesPerRound ?? 0;
  const fill = (b: DirtyBitmap, pages: readonly number[]) => {
    b.clearAll();
    for (const p of pages) b.set(p);
  };
  o.selection.reset();
  o.termination?.reset();
  try {
    cand.setRange(0, n);
    for (let r = 0; ; r++) {
      const writes = o.writes[r] ?? [];
      if (r > 0) {
        fill(harvest, o.writes[r - 1]);
        history.recordRound(harvest);
        cand.copyFrom(harvest).or(defer);
      }
      fill(peek, writes);
      const res = o.selection.select({
        round: r, dirty: cand, history, firstRound: r === 0, lastRound: false,
        redirtied: o.peek === false ? undefined : peek, guestPages: n, pagesSent,
        bandwidthPagesPerSecond: bandwidth || undefined, previousRoundSeconds: r > 0 ? 1 : undefined,
      }, { send, defer });
      const row: SimulatedRound = { round: r, candidates: Array.from(cand.collect()), sent: Array.from(send.collect()), deferred: Array.from(defer.collect()), order: res.order && Array.from(res.order), note: res.note };
      rounds.push(row);
      for (const p of row.sent) dest[p] = version[p];
      history.markSent(send, r);
      pagesSent += row.sent.length;
      for (const p of writes) version[p]++;
      let stop = r + 1 >= o.writes.length;
      if (o.termination) {
        const pending = new Set([...writes, ...row.deferred]).size;
        const stats = { round: r, pendingPages: pending, pageSize: PAGE_SIZE, guestPages: n, pagesSent, bandwidthBytesPerSecond: bandwidth * PAGE_SIZE, downtimeLimitMs: o.downtimeLimitMs ?? 300 };
        let d = o.termination.decide(stats);
        if (d.action === "sync") d = o.termination.decide({ ...stats, afterSync: true });
        row.decision = d;
        stop ||= d.action === "stop";
      }
      if (stop) return finish(r + 1);
    }
  } finally {
    for (const b of [cand, send, defer, harvest, peek]) b.dispose();
    history.dispose();
  }

  function lostPages(): number[] {
    const lost: number[] = [];
    for (let p = 0; p < n; p++) if (dest[p] !== version[p]) lost.push(p);
    return lost;
  }

  function finish(r: number): SimulationResult {
    fill(harvest, o.writes[r - 1] ?? []);
    history.recordRound(harvest);
    cand.copyFrom(harvest).or(defer);
    const res = o.selection.select({ round: r, dirty: cand, history, firstRound: false, lastRound: true, guestPages: n, pagesSent }, { send, defer });
    const all = Array.from(cand.collect());
    rounds.push({ round: r, candidates: all, sent: Array.from(send.collect()), deferred: Array.from(defer.collect()), note: res.note });
    for (const p of all) dest[p] = version[p];
    pagesSent += all.length;
    return { rounds, lost: lostPages(), deferredAtStop: res.deferred, pagesSent };
  }
}
