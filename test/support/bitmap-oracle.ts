// Plain-TS oracle for the dirty-bitmap kernel: a boolean per page, every operation
// written the obvious way.
export class BitmapOracle {
  bits: boolean[];
  constructor(readonly pageCount: number) {
    this.bits = new Array(pageCount).fill(false);
  }
  count(): number {
    return this.bits.filter(Boolean).length;
  }
  collect(): number[] {
    const out: number[] = [];
    this.bits.forEach((b, i) => b && out.push(i));
    return out;
  }
  nextSet(from: number): number {
    for (let i = from; i < this.pageCount; i++) if (this.bits[i]) return i;
    return -1;
  }
  ranges(): { first: number; count: number }[] {
    const out: { first: number; count: number }[] = [];
    for (let i = 0; i < this.pageCount; i++) {
      if (!this.bits[i]) continue;
      let j = i;
      while (j < this.pageCount && this.bits[j]) j++;
      out.push({ first: i, count: j - i });
      i = j;
    }
    return out;
  }
}
