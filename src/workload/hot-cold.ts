// hot-cold: page popularity follows Zipf(s) over the working set — a few hot pages take
// most writes, a long cold tail is written rarely (what history-based selection exploits).
import { scatter, ZipfSampler } from "../util/random.js";
import { sharePages, SyntheticWorkload, type WorkloadOptions } from "./synthetic.js";

export interface HotColdWorkloadOptions extends WorkloadOptions {
  /** Zipf exponent s (default 1.0; larger is more skewed). */
  exponent?: number;
}

export class HotColdWorkload extends SyntheticWorkload {
  readonly name = "hot-cold";
  readonly exponent: number;
  #zipf: ZipfSampler | null = null;
  #map: (rank: number) => number = (x) => x;
  constructor(options: HotColdWorkloadOptions = {}) {
    super({ dirtyRate: 20000, writeSize: 128, workingSetShare: 0.5 }, options);
    this.exponent = options.exponent ?? 1.0;
  }
  protected override setup(pageCount: number): void {
    super.setup(pageCount);
    this.#zipf = new ZipfSampler(sharePages(pageCount, this.options.workingSetShare), this.exponent);
    this.#map = scatter(pageCount, this.options.seed);
  }
  protected pickPage(r: () => number): number {
    return this.#map(this.#zipf!.sample(r));
  }
}
