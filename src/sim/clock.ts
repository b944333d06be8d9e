/**
 * Time source for the engine. `realClock` is wall time; the simulator supplies a virtual
 * clock so that runs repeat bit for bit (src/sim/).
 */
export interface Clock {
  /** Seconds since an arbitrary origin. */
  now(): number;
  /** Resolves after `seconds` of this clock's time. */
  sleep(seconds: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => performance.now() / 1000,
  sleep: (seconds) => new Promise((resolve) => setTimeout(resolve, Math.max(0, seconds * 1000))),
};
