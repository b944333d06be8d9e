// Guest workloads for the demo page: the synthetic workloads of src/workload/ (the same
// ones the simulator and CLI use), plus the replay of a real recording, which plays the
// asset demo/prepare-recording.ts cut from ../shared/datasets at build time.
import { createWorkload, listWorkloads } from "../../src/workload/registry.js";
import type { GuestWriter, Workload } from "../../src/workload/workload.js";
import { parseRecordingAsset, type RecordingAsset } from "./recording-asset.js";
import { PAGE_SIZE } from "../../src/kernel/abi.js";

export interface GuestWorkloadOptions {
  /** Pages dirtied per second of guest time (synthetic workloads). */
  pagesPerSecond?: number;
  /** Fraction of guest RAM the writes fall in. */
  workingSetFraction?: number;
  seed?: number;
  /** The recording asset's bytes (workload "recording"). */
  recording?: ArrayBuffer;
}

/** Names offered in the workload menu. */
export const GUEST_WORKLOADS: readonly string[] = [...listWorkloads().map((w) => w.name), "recording"];

export function createGuestWorkload(name: string, options: GuestWorkloadOptions): Workload {
  if (name === "recording") {
    if (!options.recording) throw new Error("workload recording: the recording asset was not loaded");
    return new RecordingReplay(parseRecordingAsset(options.recording));
  }
  return createWorkload(name, {
    seed: options.seed,
    ...(options.pagesPerSecond !== undefined ? { dirtyRate: options.pagesPerSecond } : {}),
    ...(options.workingSetFraction !== undefined ? { workingSetShare: options.workingSetFraction } : {}),
  });
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
    for (let i = 0; i < b.pages.length; i++)
      mem.write(b.pages[i] * PAGE_SIZE, b.data.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
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
        mem.write(rec.pages[i] * PAGE_SIZE, rec.data.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
      }
      if (this.#t < length) return;
      this.#t -= length;
      this.#written = 0;
      this.#interval = (this.#interval + 1) % d.length;
    }
  }
}
