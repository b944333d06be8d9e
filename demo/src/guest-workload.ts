// Guest workloads for the demo page.
//
// TEMPORARY: the synthetic workloads and their registry (`createWorkload(name, options)`
// in src/workload/) are being written on another branch. Until they land, the demo uses
// the small `working-set` workload below. When merging, replace the body of
// `createGuestWorkload` with the registry call (one line, marked REGISTRY below) and
// list the registry's names in `GUEST_WORKLOADS`.
//
// The recording replay (`recording`) stays here: it plays the asset that
// demo/prepare-recording.ts cut from ../shared/datasets at build time.
import type { GuestWriter, Workload } from "../../src/workload/workload.js";
import { parseRecordingAsset, type RecordingAsset } from "./recording-asset.js";

export interface GuestWorkloadOptions {
  /** Pages dirtied per second of guest time (synthetic workloads). */
  pagesPerSecond?: number;
  /** Fraction of guest RAM the writes fall in. */
  workingSetFraction?: number;
  seed?: number;
  /** The recording asset's bytes (workload "recording"). */
  recording?: ArrayBuffer;
}

/** Names offered in the workload menu (the registry's list once it lands). */
export const GUEST_WORKLOADS = ["working-set", "idle", "recording"] as const;

export function createGuestWorkload(name: string, options: GuestWorkloadOptions): Workload {
  if (name === "recording") {
    if (!options.recording) throw new Error("workload recording: the recording asset was not loaded");
    return new RecordingReplay(parseRecordingAsset(options.recording));
  }
  // REGISTRY: return createWorkload(name, options);   (src/workload/registry.ts, issue 7)
  if (name === "idle") return new WorkingSet({ ...options, pagesPerSecond: 2, name: "idle" });
  if (name === "working-set") return new WorkingSet({ ...options, name });
  throw new Error(`unknown workload ${name}`);
}

/** Small deterministic PRNG (xorshift32). */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

const PAGE = 4096;

/**
 * The "working set" program of the literature: random partial-page writes over a set
 * fraction of RAM at a set rate. The initial image mixes zero pages, duplicated pages,
 * text and random bytes so that zero-page detection, dedup, XBZRLE and RLE all have work.
 */
class WorkingSet implements Workload {
  readonly name: string;
  #rate: number;
  #fraction: number;
  #random: () => number;
  #debt = 0;
  #counter = 0;

  constructor(o: GuestWorkloadOptions & { name: string }) {
    this.name = o.name;
    this.#rate = o.pagesPerSecond ?? 2000;
    this.#fraction = o.workingSetFraction ?? 0.5;
    this.#random = rng(o.seed ?? 1);
  }

  init(mem: GuestWriter): void {
    const r = this.#random;
    const page = new Uint8Array(PAGE);
    const text = new TextEncoder().encode("pagewire guest page: the quick brown fox jumps over the lazy dog. ");
    const shared = new Uint8Array(PAGE);
    for (let i = 0; i < PAGE; i++) shared[i] = (r() * 256) | 0;
    for (let p = 0; p < mem.pageCount; p++) {
      const kind = r();
      if (kind < 0.25) continue; // zero page
      if (kind < 0.4) page.set(shared); // duplicate content (dedup)
      else if (kind < 0.6) for (let i = 0; i < PAGE; i++) page[i] = text[(i + p) % text.length];
      else if (kind < 0.75) page.fill(p & 0xff); // long runs (RLE)
      else for (let i = 0; i < PAGE; i++) page[i] = (r() * 256) | 0;
      mem.write(p * PAGE, page);
    }
  }

  run(seconds: number, mem: GuestWriter): void {
    const r = this.#random;
    this.#debt += seconds * this.#rate;
    const set = Math.max(1, Math.floor(mem.pageCount * this.#fraction));
    const base = Math.floor((mem.pageCount - set) / 2);
    const rec = new Uint8Array(64);
    const dv = new DataView(rec.buffer);
    while (this.#debt >= 1) {
      this.#debt -= 1;
      // 80 % of writes land in the hottest 20 % of the working set
      const hot = r() < 0.8;
      const p = base + (hot ? Math.floor(r() * set * 0.2) : Math.floor(r() * set));
      const len = 8 + Math.floor(r() * 56);
      dv.setUint32(0, ++this.#counter, true);
      for (let i = 4; i < len; i++) rec[i] = r() < 0.5 ? 0 : (r() * 256) | 0;
      const at = p * PAGE + Math.floor(r() * (PAGE - len));
      mem.write(at, rec.subarray(0, len));
    }
  }
}

/**
 * Replays a recorded guest at recorded timing, looping over its intervals. The pages of an
 * interval are written evenly over its run time (the recording only says they changed
 * within it), so the guest dirties memory from its first moment.
 */
class RecordingReplay implements Workload {
  readonly name = "recording";
  #asset: RecordingAsset;
  /** Current interval, guest seconds spent in it, pages of it written so far. */
  #interval = 0;
  #t = 0;
  #written = 0;

  constructor(asset: RecordingAsset) {
    this.#asset = asset;
  }

  init(mem: GuestWriter): void {
    const b = this.#asset.base;
    for (let i = 0; i < b.pages.length; i++) mem.write(b.pages[i] * PAGE, b.data.subarray(i * PAGE, (i + 1) * PAGE));
  }

  run(seconds: number, mem: GuestWriter): void {
    const d = this.#asset.deltas;
    if (d.length === 0) return;
    this.#t += seconds;
    for (;;) {
      const rec = d[this.#interval];
      const length = rec.runSeconds > 0 ? rec.runSeconds : 0.2;
      const due = Math.min(rec.pages.length, Math.floor((this.#t / length) * rec.pages.length));
      for (; this.#written < due; this.#written++) {
        const i = this.#written;
        mem.write(rec.pages[i] * PAGE, rec.data.subarray(i * PAGE, (i + 1) * PAGE));
      }
      if (this.#t < length) return;
      this.#t -= length;
      this.#written = 0;
      this.#interval = (this.#interval + 1) % d.length;
    }
  }
}
