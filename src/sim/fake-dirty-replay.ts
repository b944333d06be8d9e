// Fake-dirty writes added to a replayed guest: writes that rewrite identical bytes. A
// recording only sees a page as dirty when its content changed between two snapshots;
// QEMU's dirty log sees every write, and resends those pages (measured in real guests:
// 62–72 % of the pages QEMU re-sent for the redis guest were identical to what it had
// sent before, 13–26 % for the dirtier guest).
//
//   share f of the dirtied pages are fake:  every real page write comes with
//   m = f / (1 − f) rewrites of its partner pages (⌊m⌋ always, one more when the page's
//   hash says so, with probability m − ⌊m⌋)
//   partner(p, k) = pool[hash(seed, p, k) mod |pool|], pool = the pages non-zero at boot
//
// The partners of a page are fixed, so over any window the distinct fake pages are about
// m × the distinct real ones (share f at every round length, not only per write), and a
// guest that keeps rewriting one working set keeps rewriting one set of fake pages, as a
// program storing the same values again would. A rewrite goes through the guest's
// `rewrite` (destination-guest.ts GuestAccess): the simulator writes the page's own bytes
// back, so the dirty log sees it and the content stays.
import { PagewireRangeError } from "../errors.js";
import { PAGE_SIZE } from "../kernel/kernel.js";
import { mixSeed } from "../util/random.js";
import type { GuestWriter, Workload } from "../workload/workload.js";
import type { GuestAccess } from "./destination-guest.js";

export interface FakeDirtyReplayOptions {
  /** Share of the dirtied pages that are identical rewrites, 0 ≤ f < 1. */
  share: number;
  seed?: number;
}

export class FakeDirtyReplay implements Workload {
  readonly name: string;
  readonly share: number;
  /** Rewrites issued so far. */
  rewrites = 0;
  readonly #inner: Workload;
  readonly #seed: number;
  readonly #perWrite: number;
  #pool: Uint32Array = new Uint32Array(0);

  constructor(inner: Workload, o: FakeDirtyReplayOptions) {
    if (!(o.share >= 0 && o.share < 1))
      throw new PagewireRangeError("WORKLOAD_OPTION", `fake-dirty share must be in [0, 1), got ${o.share}`);
    this.#inner = inner;
    this.share = o.share;
    this.#seed = o.seed ?? 1;
    this.#perWrite = o.share / (1 - o.share);
    this.name = `${inner.name}+fake-dirty:${o.share}`;
  }

  /** Partner pages of `page` (fixed for the run). */
  partners(page: number): number[] {
    const out: number[] = [];
    const n = this.#pool.length;
    if (n === 0 || this.#perWrite === 0) return out;
    const whole = Math.floor(this.#perWrite);
    const frac = this.#perWrite - whole;
    for (let k = 0; k <= whole; k++) {
      const h = mixSeed(mixSeed(this.#seed, page), k) >>> 0;
      if (k === whole && (frac === 0 || (mixSeed(h, 0xfa4e) >>> 0) / 2 ** 32 >= frac)) break;
      out.push(this.#pool[h % n]);
    }
    return out;
  }

  init(mem: GuestWriter): void {
    const nonZero = new Uint8Array(mem.pageCount);
    this.#inner.init({
      pageCount: mem.pageCount,
      write: (offset, data) => {
        mem.write(offset, data);
        // a page's slice of this write with a non-zero byte: the page holds data
        for (let at = 0; at < data.length; ) {
          const page = Math.floor((offset + at) / PAGE_SIZE);
          const end = Math.min(data.length, (page + 1) * PAGE_SIZE - offset);
          if (!nonZero[page] && data.subarray(at, end).some((b) => b !== 0)) nonZero[page] = 1;
          at = end;
        }
      },
    });
    const pool: number[] = [];
    for (let p = 0; p < nonZero.length; p++) if (nonZero[p]) pool.push(p);
    this.#pool = Uint32Array.from(pool.length ? pool : Array.from({ length: mem.pageCount }, (_, p) => p));
  }

  run(seconds: number, mem: GuestAccess): void {
    const rewrite = mem.rewrite?.bind(mem);
    this.#inner.run(seconds, {
      pageCount: mem.pageCount,
      read: mem.read?.bind(mem),
      rewrite,
      write: (offset, data) => {
        mem.write(offset, data);
        if (!rewrite || data.length === 0) return;
        const first = Math.floor(offset / PAGE_SIZE);
        const last = Math.floor((offset + data.length - 1) / PAGE_SIZE);
        for (let p = first; p <= last; p++)
          for (const q of this.partners(p)) {
            rewrite(q);
            this.rewrites++;
          }
      },
    } as GuestAccess);
  }
}

/** `workload` with fake-dirty rewrites at `share` (none when the share is 0 or undefined). */
export function withFakeDirty(workload: Workload, share: number | undefined, seed?: number): Workload {
  return share ? new FakeDirtyReplay(workload, { share, seed }) : workload;
}
