// idle: an idle guest — timers, kernel bookkeeping and log lines in a small set of pages
// (the idle recording dirties ~16 pages per 200 ms: 80 pages/s).
import { randomInt, scatter } from "../util/random.js";
import { sharePages, SyntheticWorkload, type WorkloadOptions } from "./synthetic.js";

export class IdleWorkload extends SyntheticWorkload {
  readonly name = "idle";
  #set = 1;
  #map: (rank: number) => number = (x) => x;
  constructor(options: WorkloadOptions = {}) {
    super({ dirtyRate: 80, writeSize: 64, workingSetShare: 0.005, fakeDirtyShare: 0.3 }, options);
  }
  protected override setup(pageCount: number): void {
    super.setup(pageCount);
    this.#set = sharePages(pageCount, this.options.workingSetShare, 16);
    this.#map = scatter(pageCount, this.options.seed);
  }
  protected pickPage(r: () => number): number {
    return this.#map(randomInt(r, this.#set));
  }
}
