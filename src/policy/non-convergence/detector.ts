import type { PeriodStats } from "../types.js";

/**
 * QEMU's non-convergence test: a period is "dirty-rate high" when the bytes dirtied in
 * it exceed `thresholdPercent` (50) % of the bytes sent in it; every second such period
 * fires (the counter is reset only when it fires, as in QEMU, not on a calm period).
 * // see: QEMU migration/ram.c migration_trigger_throttle (dirty_rate_high_cnt, throttle-trigger-threshold)
 */
export class DirtyRateDetector {
  readonly thresholdPercent: number;
  readonly hits: number;
  #count = 0;

  constructor(thresholdPercent = 50, hits = 2) {
    this.thresholdPercent = thresholdPercent;
    this.hits = hits;
  }

  /** True when this period makes the detector fire. */
  observe(p: PeriodStats): boolean {
    const high = p.dirtiedBytes > (p.sentBytes * this.thresholdPercent) / 100;
    if (high && ++this.#count >= this.hits) {
      this.#count = 0;
      return true;
    }
    return false;
  }

  reset(): void {
    this.#count = 0;
  }
}
