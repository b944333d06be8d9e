import type { NonConvergenceDecision, NonConvergencePolicy, PeriodStats } from "../types.js";
import { DirtyRateDetector } from "./detector.js";

export interface ThrottleOptions {
  /** Called with the new guest CPU throttle in percent (the engine slows the guest). */
  onThrottle?: (percent: number) => void;
  /** Dirtied/sent percentage that counts as high (default 50). */
  thresholdPercent?: number;
  /** First throttle (default 20 %). */
  initialPercent?: number;
  /** Step per further trigger (default 10 %). */
  incrementPercent?: number;
  /** Cap (default 99 %). */
  maxPercent?: number;
}

/**
 * QEMU auto-converge: when the bytes dirtied in a sync period exceed 50 % of the bytes
 * sent in it, for the second time (see DirtyRateDetector), throttle the guest's CPUs:
 * 20 % the first time, then +10 % per trigger, at most 99 %. The new percentage is
 * applied through the `onThrottle` callback and returned; other periods return "none".
 * // see: QEMU migration/ram.c mig_throttle_guest_down, migration_trigger_throttle; softmmu/cpu-throttle.c
 */
export class ThrottleNonConvergence implements NonConvergencePolicy {
  static readonly policyName = "throttle";
  static readonly description =
    "auto-converge: throttle the guest 20 %, +10 % steps, max 99 % when dirtying > 50 % of sent twice";
  readonly kind = "non-convergence" as const;
  readonly name = ThrottleNonConvergence.policyName;
  readonly initialPercent: number;
  readonly incrementPercent: number;
  readonly maxPercent: number;
  readonly #detector: DirtyRateDetector;
  readonly #onThrottle?: (percent: number) => void;
  #percent = 0;

  constructor(options: ThrottleOptions = {}) {
    this.#detector = new DirtyRateDetector(options.thresholdPercent ?? 50, 2);
    this.#onThrottle = options.onThrottle;
    this.initialPercent = options.initialPercent ?? 20;
    this.incrementPercent = options.incrementPercent ?? 10;
    this.maxPercent = Math.min(99, options.maxPercent ?? 99);
  }

  /** Current throttle in percent (0 = not throttling). */
  get percent(): number {
    return this.#percent;
  }

  check(p: PeriodStats): NonConvergenceDecision {
    if (!this.#detector.observe(p)) return { action: "none" };
    this.#percent =
      this.#percent === 0
        ? Math.min(this.initialPercent, this.maxPercent)
        : Math.min(this.#percent + this.incrementPercent, this.maxPercent);
    this.#onThrottle?.(this.#percent);
    return { action: "throttle", percent: this.#percent };
  }

  reset(): void {
    this.#detector.reset();
    this.#percent = 0;
  }
}
