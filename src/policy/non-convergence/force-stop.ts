import type { NonConvergenceDecision, NonConvergencePolicy, PeriodStats } from "../types.js";
import { DirtyRateDetector } from "./detector.js";

export interface ForceStopOptions {
  /** Dirtied/sent percentage that counts as high (default 50). */
  thresholdPercent?: number;
}

/**
 * Force stop: when pre-copy is found not to converge (dirtied bytes > 50 % of sent
 * bytes in two periods), stop iterating and do the stop-and-copy now, accepting a
 * longer downtime than the limit (Xen's behaviour at its iteration caps).
 * // see: Clark et al. 2005 §4 (stop-and-copy when the writable working set will not shrink)
 */
export class ForceStopNonConvergence implements NonConvergencePolicy {
  static readonly policyName = "force-stop";
  static readonly description = "stop-and-copy now when dirtying > 50 % of sent twice, accepting a longer downtime";
  readonly kind = "non-convergence" as const;
  readonly name = ForceStopNonConvergence.policyName;
  readonly #detector: DirtyRateDetector;

  constructor(options: ForceStopOptions = {}) {
    this.#detector = new DirtyRateDetector(options.thresholdPercent ?? 50, 2);
  }

  check(p: PeriodStats): NonConvergenceDecision {
    return this.#detector.observe(p) ? { action: "stop" } : { action: "none" };
  }

  reset(): void {
    this.#detector.reset();
  }
}
