// A guest made from an observed dirty log, for predictions: the pages the source saw
// dirty in each harvest interval of its probe are written again, interval after interval,
// cycling, spread evenly over each interval (as trace.ts replays a recording).
//
//   init:   the page contents given (what the source's pages held at the end of the probe)
//   write:  `changedBytes` bytes (measured by the probe: what its dirtied pages changed;
//           default 64) at a page- and version-dependent offset take new pseudo-random
//           values each time the page is written: a small update stays XBZRLE-friendly,
//           a whole-page rewrite does not
//   growth: from the second pass over the intervals on, a share ν of the writes (fixed by
//           a hash of page and pass) goes to a page drawn uniformly from the guest instead:
//           ν is the share of new pages the log kept showing (freshShare), so a guest
//           whose writes spread over RAM keeps spreading, and a steady working set stays
//           one (a plain cycle would bound the pages ever dirtied by those of the log)
//
// A log says nothing about reads; the replayed guest only writes.
import { PagewireRangeError } from "../errors.js";
import { PAGE_SIZE } from "../kernel/kernel.js";
import { mixSeed, scatter } from "../util/random.js";
import type { GuestWriter, Workload } from "../workload/workload.js";

export interface ObservedInterval {
  /** Seconds of guest time the interval lasted. */
  seconds: number;
  /** Pages dirtied in it (indices in the replayed guest). */
  pages: ArrayLike<number>;
}

export class DirtyLogReplay implements Workload {
  readonly name = "dirty-log-replay";
  readonly #intervals: ObservedInterval[];
  readonly #content: Uint8Array;
  readonly #pageCount: number;
  readonly #version: Uint32Array;
  #t = 0;
  #next = 0;
  #written = 0;
  #order: (j: number) => number = (j) => j;
  readonly #bytes: Uint8Array;

  readonly #fresh: number;

  /** `content`: pageCount × 4096 bytes, the guest's pages at the start; `freshShare`: ν above (default 0). */
  constructor(
    intervals: ObservedInterval[],
    content: Uint8Array,
    pageCount: number,
    freshShare = 0,
    changedBytes = 64,
  ) {
    this.#fresh = Math.min(1, Math.max(0, freshShare));
    this.#bytes = new Uint8Array(Math.min(PAGE_SIZE, Math.max(1, Math.round(changedBytes))));
    if (content.length !== pageCount * PAGE_SIZE)
      throw new PagewireRangeError(
        "BUFFER_TOO_SHORT",
        `DirtyLogReplay: ${content.length} bytes of content for ${pageCount} pages`,
      );
    for (const i of intervals)
      for (let j = 0; j < i.pages.length; j++)
        if (!(i.pages[j] >= 0 && i.pages[j] < pageCount))
          throw new PagewireRangeError("PAGE_INDEX", `DirtyLogReplay: page ${i.pages[j]} outside 0..${pageCount}`);
    this.#intervals = intervals.filter((i) => i.seconds > 0);
    this.#content = content;
    this.#pageCount = pageCount;
    this.#version = new Uint32Array(pageCount);
  }

  init(mem: GuestWriter): void {
    mem.write(0, this.#content);
  }

  run(seconds: number, mem: GuestWriter): void {
    const list = this.#intervals;
    if (list.length === 0) return;
    let left = seconds;
    while (left > 0) {
      const iv = list[this.#next % list.length];
      const n = iv.pages.length;
      if (this.#written === 0 && n > 0) this.#order = scatter(n, this.#next + 1);
      // the interval ends within this run: finish it exactly (adding the rest to #t may round below its end)
      const rest = iv.seconds - this.#t;
      const ends = rest <= left;
      this.#t = ends ? iv.seconds : this.#t + left;
      left = ends ? left - rest : 0;
      const due = ends ? n : Math.floor((n * this.#t) / iv.seconds);
      const pass = Math.floor(this.#next / list.length);
      for (; this.#written < due; this.#written++) {
        let page = iv.pages[this.#order(this.#written)];
        if (pass > 0 && this.#fresh > 0) {
          const h = mixSeed(page, pass, 0xf7e5);
          if (h / 2 ** 32 < this.#fresh) page = mixSeed(h, 1) % this.#pageCount;
        }
        this.#write(page, mem);
      }
      if (this.#t < iv.seconds) break;
      this.#next++;
      this.#t = 0;
      this.#written = 0;
    }
  }

  #write(page: number, mem: GuestWriter): void {
    const v = ++this.#version[page];
    const b = this.#bytes;
    let h = mixSeed(page, v);
    const at = h % (PAGE_SIZE - b.length + 1);
    for (let i = 0; i < b.length; i += 4) {
      h = mixSeed(h, i);
      b[i] = h;
      b[i + 1] = h >>> 8;
      b[i + 2] = h >>> 16;
      b[i + 3] = h >>> 24;
    }
    mem.write(page * PAGE_SIZE + at, b);
  }

  /** Pages in the replayed guest. */
  get pageCount(): number {
    return this.#pageCount;
  }
}
