// The destination guest of a post-copy test, in real time: from the switch on it picks a
// page (seeded), faults it in with `destination.ensurePage(page)` (which waits through a
// recovery), writes a few bytes into it and records the write, then yields for a tick.
// The writes replayed over the source memory at the pause give what the destination must
// end with. Bounded by `maxWrites`; `stop()` ends it and waits for the write in progress.
//
// `holdWhilePaused`: no new fault is started while the destination is postcopy-paused (the
// vCPU waits for the link to come back first). A fault started then can send its
// PAGE_REQUEST on the replacement connection before the source's RESUME was read, which
// the source does not expect (see "found in src" in test/engine/postcopy-recovery-tcp.test.ts).
import { PAGE_SIZE } from "../../src/index.js";
import type { MigrationDestination } from "../../src/engine/destination.js";
import type { WasmGuestMemory } from "../../src/memory/wasm-guest-memory.js";
import { randInt, rng } from "./random.js";

export interface GuestWrite {
  offset: number;
  data: Uint8Array;
  /** The destination's state when the write was made. */
  state: string;
  /** `epoch()` when the fault started and when the write was made (e.g. connections so far). */
  epochs: [number, number];
}

export interface PostcopyGuest {
  readonly writes: GuestWrite[];
  /** Times `destination.running` was false when the guest looked (before each fault and after each write). */
  readonly notRunning: number;
  /** What ensurePage threw, if it did (the guest then stops, as a vCPU blocked for good). */
  readonly error: unknown;
  /** Ends the guest; resolves once its loop returned. */
  stop(): Promise<void>;
  /** Replays the writes over `base` (a copy of it). */
  applyTo(base: Uint8Array): Uint8Array;
}

export function startPostcopyGuest(
  destination: MigrationDestination,
  memory: WasmGuestMemory,
  o: {
    seed: number;
    maxWrites?: number;
    /** Pages it may touch (default: all). */
    pages?: number;
    /** Start no fault while the destination is postcopy-paused (see above). */
    holdWhilePaused?: boolean;
    /** A counter recorded with each write (e.g. the proxy's connections: which link the write happened on). */
    epoch?: () => number;
  },
): PostcopyGuest {
  const r = rng(o.seed);
  const pages = o.pages ?? memory.pageCount;
  const max = o.maxWrites ?? 5000;
  const writes: GuestWrite[] = [];
  let notRunning = 0;
  let error: unknown = null;
  let stopped = false;
  const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 1));
  const epoch = o.epoch ?? (() => 0);
  const loop = (async () => {
    for (let i = 0; i < max && !stopped; i++) {
      const page = randInt(r, pages);
      for (
        let held = 0;
        o.holdWhilePaused && destination.state === "postcopy-paused" && !stopped && held < 60_000;
        held++
      )
        await tick();
      if (!destination.running) notRunning++;
      const before = epoch();
      try {
        await destination.ensurePage(page);
      } catch (err) {
        error = err;
        return;
      }
      const len = 1 + randInt(r, 24);
      const data = new Uint8Array(len);
      for (let j = 0; j < len; j++) data[j] = randInt(r, 256);
      const offset = page * PAGE_SIZE + randInt(r, PAGE_SIZE - len + 1);
      memory.write(offset, data);
      writes.push({ offset, data, state: destination.state, epochs: [before, epoch()] });
      if (!destination.running) notRunning++;
      await tick();
    }
  })();
  return {
    writes,
    get notRunning() {
      return notRunning;
    },
    get error() {
      return error;
    },
    async stop() {
      stopped = true;
      await loop;
    },
    applyTo(base) {
      const out = base.slice();
      for (const w of writes) out.set(w.data, w.offset);
      return out;
    },
  };
}
