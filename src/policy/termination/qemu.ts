import type { RoundStats, TerminationDecision, TerminationPolicy } from "../types.js";

/**
 * QEMU: the remainder may be sent during the downtime when pending bytes are below
 * `threshold = bandwidth × downtime limit`. An estimate under the threshold is first
 * confirmed by an exact dirty sync ("sync"); if the synced figure is still under (or
 * zero), stop-and-copy starts (an empty remainder stops without the sync only when the
 * threshold is 0, as in QEMU). QEMU never gives up by itself: otherwise it continues
 * (non-convergence is the non-convergence policy's business). With no bandwidth
 * estimate yet, only an empty remainder stops.
 * // see: QEMU migration/migration.c migration_iteration_run (pending estimate/exact, threshold_size)
 */
export class QemuTermination implements TerminationPolicy {
  static readonly policyName = "qemu";
  static readonly description = "stop when pending bytes < bandwidth × downtime limit, confirmed after a final sync";
  readonly kind = "termination" as const;
  readonly name = QemuTermination.policyName;

  decide(s: RoundStats): TerminationDecision {
    const pending = s.pendingPages * s.pageSize;
    const threshold = (s.bandwidthBytesPerSecond * s.downtimeLimitMs) / 1000;
    if (!s.afterSync && pending < threshold)
      return {
        action: "sync",
        converged: false,
        reason: `estimate ${pending} B < threshold ${Math.round(threshold)} B: confirm with a sync`,
      };
    if (pending === 0 || pending < threshold)
      return { action: "stop", converged: true, reason: `pending ${pending} B < threshold ${Math.round(threshold)} B` };
    return {
      action: "continue",
      converged: false,
      reason: `pending ${pending} B ≥ threshold ${Math.round(threshold)} B`,
    };
  }

  reset(): void {}
}
