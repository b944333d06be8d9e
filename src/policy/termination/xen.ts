import type { RoundStats, TerminationDecision, TerminationPolicy } from "../types.js";

export interface XenTerminationOptions {
  /** Rounds after which pre-copy stops (default 5). */
  maxRounds?: number;
  /** Pending page count under which pre-copy stops (default 50). */
  targetPages?: number;
}

/**
 * Xen (migration v2 `simple_precopy_policy`): stop-and-copy when fewer than 50 pages
 * are dirty, or once 5 rounds have run; otherwise continue.
 * // see: Xen tools/libs/guest/xg_sr_save.c simple_precopy_policy (SPP_TARGET_DIRTY_COUNT 50, SPP_MAX_ITERATIONS 5)
 */
export class XenTermination implements TerminationPolicy {
  static readonly policyName = "xen";
  static readonly description = "stop when < 50 pages are dirty or after 5 rounds";
  readonly kind = "termination" as const;
  readonly name = XenTermination.policyName;
  readonly maxRounds: number;
  readonly targetPages: number;

  constructor(options: XenTerminationOptions = {}) {
    this.maxRounds = options.maxRounds ?? 5;
    this.targetPages = options.targetPages ?? 50;
  }

  decide(s: RoundStats): TerminationDecision {
    if (s.pendingPages < this.targetPages)
      return { action: "stop", converged: true, reason: `${s.pendingPages} pages pending < ${this.targetPages}` };
    if (s.round + 1 >= this.maxRounds)
      return { action: "stop", converged: false, reason: `${s.round + 1} rounds ≥ ${this.maxRounds}` };
    return {
      action: "continue",
      converged: false,
      reason: `${s.pendingPages} pages pending, round ${s.round + 1} of ${this.maxRounds}`,
    };
  }

  reset(): void {}
}
