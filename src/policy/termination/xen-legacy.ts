import type { RoundStats, TerminationDecision, TerminationPolicy } from "../types.js";

export interface XenLegacyTerminationOptions {
  /** Rounds after which pre-copy stops (default 30). */
  maxRounds?: number;
  /** Pages sent, as a multiple of guest pages, at which pre-copy stops (default 3). */
  maxFactor?: number;
  /** Pending page count under which pre-copy stops (default 50). */
  targetPages?: number;
}

/**
 * Xen before migration v2 (xc_domain_save): stop-and-copy once 30 rounds have run, or
 * more than 3× the guest's pages have been sent, or fewer than 50 pages are dirty.
 * // see: Xen tools/libxc/xc_domain_save.c (DEF_MAX_ITERS 29, DEF_MAX_FACTOR 3, "< 50")
 */
export class XenLegacyTermination implements TerminationPolicy {
  static readonly policyName = "xen-legacy";
  static readonly description = "stop after 30 rounds, > 3× guest sent, or < 50 pages dirty";
  readonly kind = "termination" as const;
  readonly name = XenLegacyTermination.policyName;
  readonly maxRounds: number;
  readonly maxFactor: number;
  readonly targetPages: number;

  constructor(options: XenLegacyTerminationOptions = {}) {
    this.maxRounds = options.maxRounds ?? 30;
    this.maxFactor = options.maxFactor ?? 3;
    this.targetPages = options.targetPages ?? 50;
  }

  decide(s: RoundStats): TerminationDecision {
    if (s.pendingPages < this.targetPages)
      return { action: "stop", converged: true, reason: `${s.pendingPages} pages pending < ${this.targetPages}` };
    if (s.round + 1 >= this.maxRounds)
      return { action: "stop", converged: false, reason: `${s.round + 1} rounds ≥ ${this.maxRounds}` };
    if (s.pagesSent > this.maxFactor * s.guestPages)
      return {
        action: "stop",
        converged: false,
        reason: `${s.pagesSent} pages sent > ${this.maxFactor}× ${s.guestPages}`,
      };
    return { action: "continue", converged: false, reason: `${s.pendingPages} pages pending` };
  }

  reset(): void {}
}
