import type { Clock } from "../util/clock.js";
import { realClock } from "../util/clock.js";

/**
 * Token bucket limiting bytes per second (QEMU's max-bandwidth). `take(n)` waits until n
 * bytes of budget exist; the burst allowance is `burstSeconds` of the rate. The rate can
 * change during a migration (`setRate`); Infinity disables limiting.
 */
export class TokenBucket {
  #rate: number;
  #tokens: number;
  #last: number;
  readonly #clock: Clock;
  readonly #burstSeconds: number;
  /** Wake the take()s that sleep: a new rate applies to the bytes they wait for at once. */
  readonly #sleepers = new Set<() => void>();

  constructor(bytesPerSecond: number, options: { clock?: Clock; burstSeconds?: number } = {}) {
    this.#clock = options.clock ?? realClock;
    this.#burstSeconds = options.burstSeconds ?? 0.05;
    this.#rate = bytesPerSecond;
    this.#tokens = 0;
    this.#last = this.#clock.now();
  }

  get rate(): number {
    return this.#rate;
  }

  setRate(bytesPerSecond: number): void {
    this.#refill();
    this.#rate = bytesPerSecond;
    for (const w of this.#sleepers) w();
    this.#sleepers.clear();
  }

  /** Waits until `bytes` may be sent, then spends them. */
  async take(bytes: number): Promise<void> {
    if (!Number.isFinite(this.#rate)) return;
    this.#refill();
    this.#tokens -= bytes;
    while (this.#tokens < 0) {
      let wake!: () => void;
      const woken = new Promise<void>((r) => (wake = r));
      this.#sleepers.add(wake);
      await Promise.race([this.#clock.sleep(-this.#tokens / this.#rate), woken]);
      this.#sleepers.delete(wake);
      this.#refill();
      if (!Number.isFinite(this.#rate)) return;
    }
  }

  #refill(): void {
    const now = this.#clock.now();
    if (Number.isFinite(this.#rate)) {
      this.#tokens = Math.min(this.#tokens + (now - this.#last) * this.#rate, this.#rate * this.#burstSeconds);
    }
    this.#last = now;
  }
}
