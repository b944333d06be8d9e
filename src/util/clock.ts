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

/**
 * Resolves with `promise`'s value, or with `fallback` after `seconds` of `clock` time,
 * whichever comes first. With the real clock the timer is cleared when the promise wins,
 * so a finished migration does not keep the process alive.
 */
export async function withTimeout<T, F>(
  promise: Promise<T>,
  seconds: number,
  fallback: F,
  clock: Clock = realClock,
): Promise<T | F> {
  if (clock !== realClock) return Promise.race([promise, clock.sleep(seconds).then(() => fallback)]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<F>((resolve) => (timer = setTimeout(() => resolve(fallback), seconds * 1000)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
