import type { RoundStats, TerminationDecision, TerminationPolicy } from "../types.js";

export interface AdaptiveTerminationOptions {
  /** A round "shrinks" the dirty set when pending falls by more than this fraction (default 0.1). */
  margin?: number;
  /** Consecutive non-shrinking rounds that stop pre-copy (default 2). */
  patience?: number;
  /** Hard cap on rounds (default 30). */
  maxRounds?: number;
}

/**
 * Adaptive iteration termination: stop-and-copy as soon as the remainder fits the
 * downtime (pending bytes < bandwidth × downtime limit, when a bandwidth is known, or
 * nothing pending); otherwise stop when iterating no longer pays — the pending set has
 * failed to shrink by more than 10 % from one round to the next for 2 consecutive
 * rounds (pending_r > 0.9 × pending_{r−1}) — or after 30 rounds.
 * // see: Zhu et al. 2013, "ITC-LM: a smart iteration-termination criterion based live virtual machine migration" (NPC)
 */
export class AdaptiveTermination implements TerminationPolicy {
  static readonly policyName = "adaptive";
  static readonly description =
    "stop when the remainder fits the downtime or the dirty set stops shrinking by > 10 % for 2 rounds";
  readonly kind = "termination" as const;
  readonly name = AdaptiveTermination.policyName;
  readonly margin: number;
  readonly patience: number;
  readonly maxRounds: number;
  #previous = -1;
  #stalled = 0;

  constructor(options: AdaptiveTerminationOptions = {}) {
    this.margin = options.margin ?? 0.1;
    this.patience = Math.max(1, options.patience ?? 2);
    this.maxRounds = options.maxRounds ?? 30;
  }

  decide(s: RoundStats): TerminationDecision {
    const pending = s.pendingPages * s.pageSize;
    const threshold = (s.bandwidthBytesPerSecond * s.downtimeLimitMs) / 1000;
    const previous = this.#previous;
    this.#previous = s.pendingPages;
    if (pending === 0 || pending < threshold)
      return { action: "stop", converged: true, reason: `pending ${pending} B < threshold ${Math.round(threshold)} B` };
    if (previous >= 0 && s.pendingPages > (1 - this.margin) * previous) this.#stalled++;
    else this.#stalled = 0;
    if (this.#stalled >= this.patience)
      return {
        action: "stop",
        converged: false,
        reason: `pending ${s.pendingPages} pages did not shrink by > ${this.margin * 100} % for ${this.#stalled} rounds`,
      };
    if (s.round + 1 >= this.maxRounds)
      return { action: "stop", converged: false, reason: `${s.round + 1} rounds ≥ ${this.maxRounds}` };
    return { action: "continue", converged: false, reason: `pending ${s.pendingPages} pages (previous ${previous})` };
  }

  reset(): void {
    this.#previous = -1;
    this.#stalled = 0;
  }
}
