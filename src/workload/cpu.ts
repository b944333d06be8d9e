// cpu: a CPU-bound guest (sysbench-like): a tiny working set of counters and stack pages
// written often.
import { randomInt } from "../util/random.js";
import { SyntheticWorkload, type WorkloadOptions } from "./synthetic.js";

export interface CpuWorkloadOptions extends WorkloadOptions {
  /** Pages in the working set (default 256: 1 MiB). */
  workingSetPages?: number;
}

export class CpuWorkload extends SyntheticWorkload {
  readonly name = "cpu";
  readonly workingSetPages: number;
  #first = 0;
  constructor(options: CpuWorkloadOptions = {}) {
    super({ dirtyRate: 2000, writeSize: 64, content: "counters" }, options);
    this.workingSetPages = options.workingSetPages ?? 256;
  }
  protected override setup(pageCount: number): void {
    super.setup(pageCount);
    this.#first = Math.floor(pageCount / 3); // somewhere in the middle of RAM
  }
  protected pickPage(r: () => number): number {
    const n = Math.min(this.workingSetPages, this.pageCount);
    return (this.#first + randomInt(r, n)) % this.pageCount;
  }
}
