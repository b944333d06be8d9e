// ZERO records on fresh destination memory: the applier knows from the digest table which
// pages hold zeros (it hashes every page it writes; a zeroed memory starts with the zero
// page's hash everywhere), so it neither writes nor reads them. A read of untouched memory
// is a page fault too (~15 µs on this VM), counted here with the process's minor faults.
import { describe, expect, it } from "vitest";
import { PageApplier } from "../../src/codec/page-applier.js";
import { MemoryDigest } from "../../src/engine/digest.js";
import { createKernel, PAGE_SIZE, WasmGuestMemory } from "../../src/index.js";
import { PageRecordWriter, RecordKind } from "../../src/wire/page-record.js";

const PAGES = 8192; // 32 MiB

/** A PAGES payload: a RAW page at 0, then ZERO records for every page (page 0's zeroes it again). */
function payload(): Uint8Array {
  const w = new PageRecordWriter();
  w.begin(1);
  w.add(RecordKind.RAW, 0, new Uint8Array(PAGE_SIZE).fill(9));
  for (let p = 0; p < PAGES; p++) w.add(RecordKind.ZERO, p);
  return w.finish();
}

/** Applies the payload to fresh memory; returns the minor page faults it cost and the memory. */
async function applyFresh(knownZero: boolean) {
  const k = await createKernel();
  const dst = new WasmGuestMemory(k, PAGES);
  const digest = new MemoryDigest(k, PAGES, 0x1234n);
  if (knownZero) digest.assumeZero();
  const applier = new PageApplier(k, dst, { digest });
  const data = payload();
  const f0 = process.resourceUsage().minorPageFault;
  applier.apply(data);
  const faults = process.resourceUsage().minorPageFault - f0;
  return { faults, dst, digest };
}

describe("ZERO records on fresh memory", () => {
  it("pages the digest knows are zero are not touched; a page written before is zeroed again", async () => {
    const known = await applyFresh(true);
    const checked = await applyFresh(false);
    // both end the same: every page zero (page 0 was written, then zeroed)
    expect(known.dst.bytes().every((b) => b === 0)).toBe(true);
    expect(checked.dst.bytes().every((b) => b === 0)).toBe(true);
    expect(known.digest.hashedPages).toBe(PAGES);
    // without the table's knowledge every page is read (a fault each, unless the host maps
    // huge pages); with it only page 0 and the applier's own scratch are touched
    expect(known.faults).toBeLessThan(Math.max(64, checked.faults / 4));
  });
});
