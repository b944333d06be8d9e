// sequential: a scan writing page after page over its region and wrapping (a copy, a
// compaction, a large array being filled).
import { sharePages, SyntheticWorkload, type WorkloadOptions } from "./synthetic.js";

export class SequentialWorkload extends SyntheticWorkload {
  readonly name = "sequential";
  #set = 1;
  #cursor = 0;
  constructor(options: WorkloadOptions = {}) {
    super({ dirtyRate: 10000, writeSize: 4096, workingSetShare: 0.5 }, options);
  }
  protected override setup(pageCount: number): void {
    super.setup(pageCount);
    this.#set = sharePages(pageCount, this.options.workingSetShare);
    this.#cursor = 0;
  }
  protected pickPage(): number {
    const p = this.#cursor;
    this.#cursor = (this.#cursor + 1) % this.#set;
    return p;
  }
}
