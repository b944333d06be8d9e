import type { NonConvergenceDecision, NonConvergencePolicy, PeriodStats } from "../types.js";
import { DirtyRateDetector } from "./detector.js";

export interface PostcopyOptions {
  /** Dirtied/sent percentage that counts as high (default 50). */
  thresholdPercent?: number;
}

/**
 * Switch to post-copy: when pre-copy is found not to converge (the same test as
 * auto-converge: dirtied bytes > 50 % of sent bytes in two periods), answer "postcopy"
 * once; the engine then stops the guest briefly, sends the device state and the dirty
 * bitmap, resumes the guest at the destination and serves faults while pushing the rest.
 * // see: QEMU docs/devel/migration/postcopy.rst (migrate_start_postcopy); Hines & Gopalan 2009
 */
export class PostcopyNonConvergence implements NonConvergencePolicy {
  static readonly policyName = "postcopy";
  static readonly description = "switch to post-copy when dirtying > 50 % of sent twice";
  readonly kind = "non-convergence" as const;
  readonly name = PostcopyNonConvergence.policyName;
  readonly #detector: DirtyRateDetector;
  #switched = false;

  constructor(options: PostcopyOptions = {}) {
    this.#detector = new DirtyRateDetector(options.thresholdPercent ?? 50, 2);
  }

  check(p: PeriodStats): NonConvergenceDecision {
    if (this.#switched || !this.#detector.observe(p)) return { action: "none" };
    this.#switched = true;
    return { action: "postcopy" };
  }

  reset(): void {
    this.#detector.reset();
    this.#switched = false;
  }
}
