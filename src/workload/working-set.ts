// working-set: seed 003's program — random writes spread uniformly over a set share of
// guest RAM at a set rate (the classic pre-copy convergence experiment).
import { randomInt, scatter } from "../util/random.js";
import { sharePages, SyntheticWorkload, type WorkloadOptions } from "./synthetic.js";

export class WorkingSetWorkload extends SyntheticWorkload {
  readonly name = "working-set";
  #set = 1;
  #map: (rank: number) => number = (x) => x;
  constructor(options: WorkloadOptions = {}) {
    super({ dirtyRate: 20000, writeSize: 256, workingSetShare: 0.25 }, options);
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
