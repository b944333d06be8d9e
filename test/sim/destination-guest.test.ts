import { describe, expect, it } from "vitest";
import { runScenario, type ScenarioOptions } from "../../src/sim/simulator.js";
import type { GuestAccess } from "../../src/sim/destination-guest.js";
import type { GuestWriter, Workload } from "../../src/workload/workload.js";

const PAGE = 4096;
const RAW = { zero: false, unchanged: false, dedup: false, xbzrle: false, rle: false, lz: false };
const B = 16 * 2 ** 20; // link bytes/s
const L = 0.001; // one-way latency, s
const PAGES = 4096;

/** Every page non-zero and distinct at boot; then, at guest time `at`, one access to `page` (a 3-byte write, or a read). */
function touchOnce(page: number, at: number, kind: "write" | "read" = "write"): Workload {
  let t = 0;
  let done = false;
  return {
    name: "touch-once",
    init(m: GuestWriter) {
      const b = new Uint8Array(PAGE);
      for (let p = 0; p < m.pageCount; p++) {
        b.fill((p % 251) + 1);
        m.write(p * PAGE, b);
      }
    },
    run(s, m: GuestAccess) {
      t += s;
      if (done || t < at) return;
      done = true;
      if (kind === "read") m.read!(page * PAGE + 100, 8);
      else m.write(page * PAGE + 8, new Uint8Array([1, 2, 3]));
    },
  };
}

/** The guest's work is counted per 1 ms quantum: one may straddle the end. */
function withinOneQuantum(ms: number, expectedMs: number): void {
  expect(Math.abs(ms - expectedMs)).toBeLessThanOrEqual(1.0001);
}

const run = (w: Workload, over: Partial<ScenarioOptions>) =>
  runScenario({ workload: w, pageCount: PAGES, bandwidth: B, latency: L, cpu: "none", codecs: RAW, seed: 1, ...over });

describe("destination guest", () => {
  it("post-copy: a write to a page not yet pushed stalls for the request, the chunk on the wire and the page (prepage 16)", async () => {
    const r = await run(touchOnce(3000, 0.05), { mode: "postcopy" });
    const g = r.guest;
    expect(r.verified).toBe(true);
    expect(g.faults).toBe(1);
    // request (L) + what the link is still sending of the current 16-page chunk + the page + reply (L)
    const pageS = PAGE / B;
    expect(g.faultStallMs / 1000).toBeGreaterThanOrEqual(2 * L + pageS);
    expect(g.faultStallMs / 1000).toBeLessThanOrEqual(2 * L + 17 * pageS * 1.05 + 0.001);
    expect(g.maxFaultStallMs).toBe(g.faultStallMs);
    // the guest lost the downtime and the stall, nothing else (one quantum of slack)
    withinOneQuantum(g.lostSeconds * 1000, g.downtimeMs + g.faultStallMs);
    expect(g.progress).toBeLessThan(1);
    expect(g.destinationWorkSeconds).toBeGreaterThan(0.9); // it ran here while 16 MiB came over at 16 MiB/s
  });

  it("a fault waits behind the background push already in the socket buffer (engine not rate-limited)", async () => {
    const stall = async (sendBufferBytes: number) =>
      (await run(touchOnce(3000, 0.05), { mode: "postcopy", maxBandwidth: Infinity, sendBufferBytes })).guest;
    const small = await stall(256 << 10);
    const big = await stall(1 << 20);
    for (const [g, buf] of [
      [small, 256 << 10],
      [big, 1 << 20],
    ] as const) {
      expect(g.faults).toBe(1);
      // the request is answered behind the full buffer: 2L + buffer/B, within a chunk and the page
      const expected = 2 * L + buf / B;
      expect(g.faultStallMs / 1000).toBeGreaterThan(expected * 0.95);
      expect(g.faultStallMs / 1000).toBeLessThan(expected + (17 * PAGE * 1.05) / B + 0.001);
    }
  });

  it("a read of a missing page stalls as a write does", async () => {
    const r = await run(touchOnce(3500, 0.05, "read"), { mode: "postcopy" });
    expect(r.guest.faults).toBe(1);
    expect(r.guest.faultStallMs).toBeGreaterThan(2 * L * 1000);
    expect(r.verified).toBe(true);
  });

  it("hybrid: pages sent in pre-copy and left clean never fault; the switch-over counts as downtime", async () => {
    // the write lands during round 0 on the source, so the page is clean (sent again in round 1) at the switch
    const r = await run(touchOnce(100, 0.05), { mode: "hybrid" });
    expect(r.report.mode).toBe("hybrid");
    expect(r.guest.faults).toBe(0);
    expect(r.guest.faultStallMs).toBe(0);
    expect(r.verified).toBe(true);
    // the engine stops its clock when POSTCOPY_START leaves; the guest waits for it to arrive
    expect(r.guest.downtimeMs).toBeGreaterThanOrEqual(r.report.downtime + L * 1000);
    withinOneQuantum(r.guest.lostSeconds * 1000, r.guest.downtimeMs);
  });

  it("pre-copy: the guest starts on the destination at the activation; it lost exactly the downtime", async () => {
    const r = await run(touchOnce(100, 0.05), { mode: "precopy" });
    expect(r.guest.faults).toBe(0);
    expect(r.guest.destinationWorkSeconds).toBeGreaterThan(0);
    expect(r.guest.downtimeMs).toBeLessThanOrEqual(r.report.downtime);
    withinOneQuantum(r.guest.lostSeconds * 1000, r.guest.downtimeMs);
    expect(r.verified).toBe(true);
  });

  it("without the destination guest the figures stay those of the source alone", async () => {
    const r = await run(touchOnce(3000, 0.05), { mode: "postcopy", destinationGuest: false });
    expect(r.guest.faults).toBe(0);
    expect(r.guest.destinationWorkSeconds).toBe(0);
    expect(r.verified).toBe(true);
  });
});
