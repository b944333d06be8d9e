// Virtual time for reproducible runs: a discrete-event clock.
//
//   sleep(s)  ──► timer (t = now + s, sequence number) in a min-heap
//   tick      ──► (one per event-loop turn, after the microtasks have run)
//                 pop the earliest timer; onAdvance(now, t); now = t; resolve it
//
// Nothing happens between events, so time only moves when every task waits on the
// clock; all work done between two events takes zero virtual time (CPU time is charged
// explicitly, see src/sim/simulator.ts). Ties are broken by sleep order, so a run is a
// pure function of its inputs.
import type { Clock } from "../util/clock.js";

/** Runs `fn` on a later turn of the event loop (after microtasks): setImmediate, or a MessageChannel in browsers. */
export function nextTurn(fn: () => void): void {
  const g = globalThis as { setImmediate?: (f: () => void) => void };
  if (g.setImmediate) return void g.setImmediate(fn);
  const ch = new MessageChannel();
  ch.port1.onmessage = () => {
    ch.port1.close();
    fn();
  };
  ch.port2.postMessage(null);
}

interface Timer {
  t: number;
  seq: number;
  fire: () => void;
}

export class VirtualClock implements Clock {
  #now = 0;
  #seq = 0;
  #heap: Timer[] = [];
  #scheduled = false;
  /** Called before time moves from `from` to `to` (the simulator runs the guest here). */
  onAdvance: ((from: number, to: number) => void) | null = null;

  now(): number {
    return this.#now;
  }

  sleep(seconds: number): Promise<void> {
    let t = this.#now + Math.max(0, seconds || 0);
    // a positive sleep always moves time, even when it is below the clock's float resolution
    // (a token bucket waiting for a rounding-error deficit would otherwise spin forever)
    if (seconds > 0 && t === this.#now)
      t = this.#now + Math.max(Math.abs(this.#now) * Number.EPSILON * 2, Number.MIN_VALUE);
    return new Promise((resolve) => this.at(t, resolve));
  }

  /** Runs `fire` at virtual time `t` (or now, if `t` has passed). */
  at(t: number, fire: () => void): void {
    this.#push({ t: Math.max(t, this.#now), seq: this.#seq++, fire });
    if (!this.#scheduled) {
      this.#scheduled = true;
      nextTurn(() => this.#tick());
    }
  }

  /** Timers waiting. */
  get pending(): number {
    return this.#heap.length;
  }

  #tick(): void {
    this.#scheduled = false;
    const timer = this.#pop();
    if (!timer) return;
    if (timer.t > this.#now) {
      this.onAdvance?.(this.#now, timer.t);
      this.#now = timer.t;
    }
    timer.fire();
    if (this.#heap.length > 0) {
      this.#scheduled = true;
      nextTurn(() => this.#tick());
    }
  }

  #less(a: Timer, b: Timer): boolean {
    return a.t < b.t || (a.t === b.t && a.seq < b.seq);
  }

  #push(x: Timer): void {
    const h = this.#heap;
    h.push(x);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  #pop(): Timer | undefined {
    const h = this.#heap;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.#less(h[l], h[m])) m = l;
        if (r < h.length && this.#less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}
