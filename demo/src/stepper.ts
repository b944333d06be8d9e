// Step mode: the migration waits between rounds until the user presses "Next".
//
// The engine is not changed: DemoMigration awaits `hold()` inside callbacks the engine
// already awaits (the dirty log's harvest after a round, onPause before stop-and-copy), with
// the guest paused meanwhile. The engine runs on `clock`, which stands still during a hold,
// so round times, bandwidth estimates and downtime come out as without the holds.
import { realClock, type Clock } from "../../src/util/clock.js";

export type HoldKind = "round" | "pause";

export class Stepper {
  /** What the run waits before, or null while it runs. */
  held: HoldKind | null = null;
  #heldSeconds = 0;
  #since = 0;
  #release: (() => void) | null = null;

  constructor(private readonly onChange: () => void = () => {}) {}

  /** Wall time minus the time spent held. */
  readonly clock: Clock = {
    now: () => (this.held ? this.#since : realClock.now()) - this.#heldSeconds,
    sleep: (seconds) => realClock.sleep(seconds),
  };

  /** Resolves when the user advances (or the run is stopped). */
  async hold(kind: HoldKind): Promise<void> {
    this.#since = realClock.now();
    this.held = kind;
    const released = new Promise<void>((resolve) => (this.#release = resolve));
    this.onChange();
    await released;
    this.#heldSeconds += realClock.now() - this.#since;
    this.held = null;
    this.#release = null;
    this.onChange();
  }

  /** Lets a held run go on; false when nothing was held. */
  advance(): boolean {
    const release = this.#release;
    release?.();
    return release !== null;
  }
}
