// net-ring: network buffer rings — packets written back to back into a few ring buffers
// (payloads: random or text), plus a descriptor counter page per ring. Fake-dirty
// writes do not happen here: every packet is new data.
import { fillContent } from "./content.js";
import { mixSeed, randomInt } from "../util/random.js";
import { SyntheticWorkload, type WorkloadOptions } from "./synthetic.js";
import type { GuestWriter } from "./workload.js";
import { PAGE_SIZE } from "../kernel/abi.js";

export interface NetRingWorkloadOptions extends WorkloadOptions {
  /** Number of rings (default 4). */
  rings?: number;
  /** Pages per ring (default 512: 2 MiB). */
  ringPages?: number;
}

export class NetRingWorkload extends SyntheticWorkload {
  readonly name = "net-ring";
  readonly rings: number;
  readonly ringPages: number;
  #cursor: number[] = [];
  #first = 0;
  #packet = new Uint8Array(PAGE_SIZE);
  #desc = new Uint8Array(16);
  #seq = 0;
  constructor(options: NetRingWorkloadOptions = {}) {
    super({ dirtyRate: 8000, writeSize: 1500, content: "random" }, options);
    this.rings = options.rings ?? 4;
    this.ringPages = options.ringPages ?? 512;
  }
  protected override setup(pageCount: number): void {
    super.setup(pageCount);
    this.#first = Math.floor(pageCount / 2);
    this.#cursor = new Array(this.rings).fill(0);
  }
  #ringBase(ring: number): number {
    // descriptor page, then the ring's buffer pages; rings back to back (wrapping at the end of RAM)
    return (this.#first + ring * (this.ringPages + 1)) % this.pageCount;
  }
  protected pickPage(r: () => number): number {
    return this.#ringBase(randomInt(r, this.rings));
  }
  protected override step(mem: GuestWriter): void {
    const r = this.rng;
    const ring = randomInt(r, this.rings);
    const size = this.options.writeSize;
    const ringBytes = Math.min(this.ringPages, this.pageCount - 1) * PAGE_SIZE;
    let at = this.#cursor[ring];
    if (at + size > ringBytes) at = 0;
    this.#cursor[ring] = at + size;
    const seq = ++this.#seq;
    const data = this.#packet.subarray(0, size);
    fillContent(this.options.content, mixSeed(this.options.seed, ring, seq), seq, data);
    const base = this.#ringBase(ring);
    const start = ((base + 1) * PAGE_SIZE + at) % (this.pageCount * PAGE_SIZE);
    if (start + size <= this.pageCount * PAGE_SIZE) mem.write(start, data);
    // the descriptor: ring head and sequence number
    const d = new DataView(this.#desc.buffer);
    d.setUint32(0, at, true);
    d.setUint32(4, seq, true);
    d.setUint32(8, size, true);
    mem.write(base * PAGE_SIZE + 16 * (seq % 256), this.#desc);
    this.writes++;
  }
}
