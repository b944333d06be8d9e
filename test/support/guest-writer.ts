// A guest that writes memory during a migration, on the virtual clock: `run(seconds)` makes
// exactly rate × seconds partial-page writes (the fraction carries over), all chosen by a
// seeded PRNG. Driven from VirtualClock.onAdvance, a run is a pure function of the seed
// and the engine's virtual timing: no wall time, no event-loop races.
import { PAGE_SIZE } from "../../src/index.js";
import type { WasmGuestMemory } from "../../src/memory/wasm-guest-memory.js";
import { randInt, rng } from "./random.js";

export interface GuestWriterOptions {
  seed: number;
  /** Writes per virtual second (default 500 000: about 50 MB/s of partial-page writes). */
  writesPerSecond?: number;
  /** The hot working set: pages 0..hotPages-1 (default min(pageCount, 300)). */
  hotPages?: number;
}

export interface GuestWriter {
  /** Runs the guest for `seconds` of virtual time (nothing once stopped). */
  run(seconds: number): void;
  /** Pauses the guest for good (the migration's onPause). */
  stop(): void;
  readonly stopped: boolean;
  /** Writes made so far. */
  readonly writes: number;
}

/** Partial-page writes of 8..207 bytes, half zeros and half random bytes, over a hot set. */
export function createGuestWriter(mem: WasmGuestMemory, o: GuestWriterOptions): GuestWriter {
  const r = rng(o.seed);
  const rate = o.writesPerSecond ?? 500_000;
  const hot = Math.min(mem.pageCount, o.hotPages ?? 300);
  let owed = 0;
  let writes = 0;
  let stopped = false;
  return {
    run(seconds) {
      if (stopped || !(seconds > 0)) return;
      owed += seconds * rate;
      for (; owed >= 1; owed--) {
        const page = randInt(r, hot);
        const len = 8 + randInt(r, 200);
        const data = new Uint8Array(len);
        for (let j = 0; j < len; j++) data[j] = r() < 0.5 ? 0 : randInt(r, 256);
        mem.write(page * PAGE_SIZE + randInt(r, PAGE_SIZE - len), data);
        writes++;
      }
    },
    stop: () => void (stopped = true),
    get stopped() {
      return stopped;
    },
    get writes() {
      return writes;
    },
  };
}
