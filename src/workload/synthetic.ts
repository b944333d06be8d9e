// The common machinery of the synthetic workloads: boot content, a write rate kept in
// virtual time, partial-page writes with content models, and fake-dirty writes.
//
//   run(s):  writes = floor(carry + rate × s)            (the fraction carries over)
//            per write: page = pickPage(rng)             (the workload's access pattern)
//                       fake-dirty (share f): rewrite the page's last write byte for byte
//                       else: version[page]++, write size bytes of content(seed, page, version)
//
// Every byte written is a pure function of (seed, page, version), so a fake-dirty write
// can regenerate the bytes it repeats, and a run is a pure function of the seed.
import { PagewireRangeError } from "../errors.js";
import { PAGE_SIZE } from "../kernel/abi.js";
import { CONTENT_MODELS, fillContent, type ContentModel } from "./content.js";
import { mixSeed, seededRandom } from "../util/random.js";
import type { GuestWriter, Workload } from "./workload.js";

/** Parameters every synthetic workload takes (each workload has its own defaults). */
export interface WorkloadOptions {
  /** PRNG seed (default 1). */
  seed?: number;
  /** Page writes per second of guest time (fake-dirty writes included). */
  dirtyRate?: number;
  /** Bytes per write, 1..4096 (4096: whole pages). */
  writeSize?: number;
  /** What writes contain: zeros, text, pointers, counters, random, or mixed. */
  content?: ContentModel;
  /** Share of writes that rewrite the bytes already there (57 % measured for redis). */
  fakeDirtyShare?: number;
  /** Share of guest RAM the workload writes (its working set), 0..1. */
  workingSetShare?: number;
  /** Share of pages that are zero at boot (18–27 % in the recordings). */
  zeroShare?: number;
  /** Share of non-zero boot pages that duplicate another page (8–25 % in the recordings). */
  duplicateShare?: number;
}

export type ResolvedWorkloadOptions = Required<WorkloadOptions>;

export const BASE_DEFAULTS: ResolvedWorkloadOptions = {
  seed: 1,
  dirtyRate: 1000,
  writeSize: 128,
  content: "mixed",
  fakeDirtyShare: 0,
  workingSetShare: 0.25,
  zeroShare: 0.25,
  duplicateShare: 0.1,
};

const TEMPLATES = 64;

export abstract class SyntheticWorkload implements Workload {
  abstract readonly name: string;
  readonly options: ResolvedWorkloadOptions;
  protected rng: () => number;
  protected pageCount = 0;
  /** Sequence number of the last write to each page (0: boot content). */
  protected version = new Uint32Array(0);
  /** Writes done, fake-dirty writes among them. */
  writes = 0;
  fakeWrites = 0;
  #carry = 0;
  #templates: Uint8Array[] = [];
  #page = new Uint8Array(PAGE_SIZE);
  #buf = new Uint8Array(PAGE_SIZE);

  constructor(defaults: Partial<ResolvedWorkloadOptions>, options: WorkloadOptions) {
    const o = { ...BASE_DEFAULTS, ...defaults, ...stripUndefined(options) };
    checkOptions(o);
    this.options = o;
    this.rng = seededRandom(mixSeed(o.seed, 0x5eed));
  }

  /** Called once the guest size is known (init, or the first run). */
  protected setup(pageCount: number): void {
    this.pageCount = pageCount;
    this.version = new Uint32Array(pageCount);
  }

  /** The page the next write goes to. */
  protected abstract pickPage(r: () => number): number;

  init(mem: GuestWriter): void {
    this.setup(mem.pageCount);
    const o = this.options;
    const r = seededRandom(mixSeed(o.seed, 0x7e4a));
    this.#templates = [];
    for (let t = 0; t < TEMPLATES; t++) {
      // boot pages: structures with zero tails, text, code-like random bytes
      const page = new Uint8Array(PAGE_SIZE);
      const used = 512 + Math.floor(r() * (PAGE_SIZE - 512));
      const model = (["text", "pointers", "counters", "random", "pointers", "text"] as const)[t % 6];
      fillContent(model, mixSeed(o.seed, t, 0x7e), t, page.subarray(0, used));
      this.#templates.push(page);
    }
    const chunkPages = 256;
    const chunk = new Uint8Array(chunkPages * PAGE_SIZE);
    for (let p0 = 0; p0 < this.pageCount; p0 += chunkPages) {
      const n = Math.min(chunkPages, this.pageCount - p0);
      for (let i = 0; i < n; i++) this.bootPage(p0 + i, chunk.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
      mem.write(p0 * PAGE_SIZE, n === chunkPages ? chunk : chunk.subarray(0, n * PAGE_SIZE));
    }
  }

  /** Page `p` as booted: zero, a duplicate of a template, or a template with page-specific bytes. */
  protected bootPage(p: number, out: Uint8Array): void {
    const o = this.options;
    const h = mixSeed(o.seed, p, 0xb007);
    const u = h / 4294967296;
    if (u < o.zeroShare || this.#templates.length === 0) {
      out.fill(0);
      return;
    }
    out.set(this.#templates[h % TEMPLATES]);
    if (u < o.zeroShare + (1 - o.zeroShare) * o.duplicateShare) return;
    const at = ((h >>> 8) % 63) * 64;
    fillContent("pointers", h, 0, out.subarray(at, at + 64));
  }

  run(seconds: number, mem: GuestWriter): void {
    if (!(seconds >= 0))
      throw new PagewireRangeError("WORKLOAD_TIME", `${this.name}: run(${seconds}): seconds must be >= 0`);
    if (this.pageCount !== mem.pageCount) this.setup(mem.pageCount);
    const due = this.#carry + this.options.dirtyRate * seconds;
    const n = Math.floor(due);
    this.#carry = due - n;
    for (let i = 0; i < n; i++) this.step(mem);
  }

  /** One write (default: a page from pickPage, fake-dirty or real). */
  protected step(mem: GuestWriter): void {
    const r = this.rng;
    const p = this.pickPage(r);
    this.writes++;
    if (r() < this.options.fakeDirtyShare) {
      this.fakeWrites++;
      const v = this.version[p];
      if (v === 0) {
        this.bootPage(p, this.#page);
        mem.write(p * PAGE_SIZE, this.#page);
      } else this.writeVersion(mem, p, v);
      return;
    }
    this.writeVersion(mem, p, ++this.version[p]);
  }

  /** Writes version `v` of page `p`'s content (regenerable: same bytes for the same p, v). */
  protected writeVersion(mem: GuestWriter, p: number, v: number): void {
    const o = this.options;
    const h = mixSeed(o.seed, p, v);
    const size = o.writeSize;
    const out = this.#buf.subarray(0, size);
    fillContent(o.content, h, v, out);
    const offset = size >= PAGE_SIZE ? 0 : this.offsetFor(p, h, size);
    mem.write(p * PAGE_SIZE + offset, out);
  }

  /** Byte offset in the page of a partial write (default: 8-aligned, from a few record slots per page). */
  protected offsetFor(p: number, h: number, size: number): number {
    const slots = Math.max(1, Math.floor(PAGE_SIZE / Math.max(size, 64)));
    const slot = (h >>> 4) % Math.min(slots, 8); // a page's writes hit the same few records
    return Math.min(PAGE_SIZE - size, ((mixSeed(p, 0x0ff5) % slots) * Math.max(size, 64) + slot * 64) & ~7);
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function checkOptions(o: ResolvedWorkloadOptions): void {
  const bad = (what: string) => {
    throw new PagewireRangeError("WORKLOAD_OPTION", `workload option ${what}`);
  };
  if (!(o.dirtyRate >= 0 && Number.isFinite(o.dirtyRate)))
    bad(`dirtyRate must be a finite number >= 0, got ${o.dirtyRate}`);
  if (!(Number.isInteger(o.writeSize) && o.writeSize >= 1 && o.writeSize <= PAGE_SIZE))
    bad(`writeSize must be an integer in 1..4096, got ${o.writeSize}`);
  if (!CONTENT_MODELS.includes(o.content)) bad(`content must be one of ${CONTENT_MODELS.join(", ")}, got ${o.content}`);
  for (const k of ["fakeDirtyShare", "workingSetShare", "zeroShare", "duplicateShare"] as const) {
    if (!(o[k] >= 0 && o[k] <= 1)) bad(`${k} must be in 0..1, got ${o[k]}`);
  }
  if (!Number.isInteger(o.seed)) bad(`seed must be an integer, got ${o.seed}`);
}

/** Number of pages in `share` of `pageCount`, at least `min`. */
export function sharePages(pageCount: number, share: number, min = 1): number {
  return Math.min(pageCount, Math.max(min, Math.round(pageCount * share)));
}
