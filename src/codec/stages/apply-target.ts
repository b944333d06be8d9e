// What a stage's apply step writes through at the destination, for memories the page
// applier's kernel does not reach (a file, another kernel's memory, another guest's page).
// Each step writes only the page its record names; readPageRecords has checked the record
// header first.
import type { Kernel } from "../../kernel/kernel.js";
import type { GuestMemory } from "../../memory/guest-memory.js";

export interface ApplyTarget {
  readonly kernel: Kernel;
  readonly memory: GuestMemory;
  /** Other guests' memories at this destination, by guest id (dedup references); guest 0 is `memory`. */
  readonly guests: ReadonlyMap<number, GuestMemory>;
  /** One page of staging for pages that do not live in kernel memory. */
  readonly scratch: Uint8Array;
  /** ZERO records whose page was already zero, so was not written. */
  zeroPagesUnwritten: number;
}

/** Writes the page a record names from the record's body; returns the page as written (valid until the next step). */
export type ApplyStep = (target: ApplyTarget, page: number, body: Uint8Array) => Uint8Array;

/** Runs a decoder on the page in place (kernel memory) or on a copy written back; returns the page. */
export function updatePage(t: ApplyTarget, page: number, decode: (page: Uint8Array) => void): Uint8Array {
  const view = t.memory.pageView(page);
  if (view) {
    decode(view);
    return view;
  }
  t.memory.readPages([page], t.scratch);
  decode(t.scratch);
  t.memory.writePage(page, t.scratch);
  return t.scratch;
}
