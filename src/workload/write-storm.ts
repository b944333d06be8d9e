// write-storm: a write-intensive guest that does not converge at the given bandwidth —
// whole pages of fresh random data over a large share of RAM, faster than a 1 Gbit/s
// link can carry (60000 pages/s ≈ 234 MiB/s).
import { randomInt, scatter } from "../util/random.js";
import { sharePages, SyntheticWorkload, type WorkloadOptions } from "./synthetic.js";

export class WriteStormWorkload extends SyntheticWorkload {
  readonly name = "write-storm";
  #set = 1;
  #map: (rank: number) => number = (x) => x;
  constructor(options: WorkloadOptions = {}) {
    super({ dirtyRate: 60000, writeSize: 4096, content: "random", workingSetShare: 0.5 }, options);
  }
  protected override setup(pageCount: number): void {
    super.setup(pageCount);
    this.#set = sharePages(pageCount, this.options.workingSetShare);
    this.#map = scatter(pageCount, this.options.seed);
  }
  protected pickPage(r: () => number): number {
    return this.#map(randomInt(r, this.#set));
  }
}
