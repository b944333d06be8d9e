import type { RoundStats, TerminationDecision, TerminationPolicy } from "../types.js";

export interface MaxRoundsTerminationOptions {
  /** Pre-copy rounds before stop-and-copy (default 30). */
  maxRounds?: number;
}

/**
 * Max rounds: run a fixed number of pre-copy rounds (or stop early when nothing is
 * pending), then stop-and-copy. The simplest bound, used by the hybrid mode for its
 * pre-copy phase and by benchmarks that compare policies round by round.
 * // see: QEMU/Xen iteration caps; Clark et al. 2005 §4 (bounding the number of rounds)
 */
export class MaxRoundsTermination implements TerminationPolicy {
  static readonly policyName = "max-rounds";
  static readonly description = "stop after a fixed number of rounds (default 30) or when nothing is pending";
  readonly kind = "termination" as const;
  readonly name = MaxRoundsTermination.policyName;
  readonly maxRounds: number;

  constructor(options: MaxRoundsTerminationOptions = {}) {
    this.maxRounds = Math.max(1, Math.floor(options.maxRounds ?? 30));
  }

  decide(s: RoundStats): TerminationDecision {
    if (s.pendingPages === 0) return { action: "stop", converged: true, reason: "nothing pending" };
    if (s.round + 1 >= this.maxRounds)
      return { action: "stop", converged: false, reason: `${s.round + 1} rounds ≥ ${this.maxRounds}` };
    return { action: "continue", converged: false, reason: `round ${s.round + 1} of ${this.maxRounds}` };
  }

  reset(): void {}
}
