// Plain-TS oracle for the history kernel: keeps the whole write trace and counts distinct
// pages between two writes of a page the obvious way (a Set over the slice).
export class HistoryOracle {
  readonly trace: number[] = [];
  readonly distance: number[];
  readonly count: number[];
  readonly lastSent: number[];
  readonly rounds: Set<number>[] = [];
  readonly #last: number[];

  constructor(readonly pageCount: number) {
    this.distance = new Array(pageCount).fill(-1);
    this.count = new Array(pageCount).fill(0);
    this.lastSent = new Array(pageCount).fill(-1);
    this.#last = new Array(pageCount).fill(-1);
  }

  write(p: number): void {
    const j = this.#last[p];
    if (j >= 0) this.distance[p] = new Set(this.trace.slice(j + 1)).size;
    this.#last[p] = this.trace.length;
    this.trace.push(p);
  }

  recordWrites(pages: number[]): void {
    for (const p of pages) this.write(p); // counts count rounds only
  }

  /** One round: pages stamped in ascending index order. */
  recordRound(pages: number[], distances = true): void {
    const sorted = [...new Set(pages)].sort((a, b) => a - b);
    for (const p of sorted) {
      if (distances) this.write(p);
      this.count[p] = Math.min(255, this.count[p] + 1);
    }
    this.rounds.unshift(new Set(sorted));
  }

  dirtiedInRound(p: number, roundsAgo: number): boolean {
    return this.rounds[roundsAgo]?.has(p) ?? false;
  }
}
