import { describe, expect, it } from "vitest";
import { createPolicy, PAGE_SIZE, type RoundStats, type TerminationPolicy } from "../../src/index.js";

/** 1000 pages/s and a 300 ms downtime limit: threshold 300 pages = 1 228 800 B. */
function stats(round: number, pendingPages: number, more: Partial<RoundStats> = {}): RoundStats {
  return {
    round,
    pendingPages,
    pageSize: PAGE_SIZE,
    guestPages: 100,
    pagesSent: 0,
    bandwidthBytesPerSecond: 1000 * PAGE_SIZE,
    downtimeLimitMs: 300,
    ...more,
  };
}

function actions(p: TerminationPolicy, seq: RoundStats[]): string[] {
  p.reset();
  return seq.map((s) => {
    const d = p.decide(s);
    return d.action === "stop" ? `stop${d.converged ? "" : "!"}` : d.action;
  });
}

describe("termination policies (stop = converged, stop! = forced by a limit)", () => {
  it("qemu: an estimate under bandwidth × downtime is confirmed by a sync", () => {
    const q = createPolicy("termination", "qemu");
    expect(
      actions(q, [
        stats(0, 400), // 1 638 400 B ≥ threshold
        stats(1, 299), // under: sync first
        stats(1, 350, { afterSync: true }), // the sync found more: continue
        stats(2, 299),
        stats(2, 299, { afterSync: true }), // confirmed
        stats(3, 300, { afterSync: true }), // equal is not under (QEMU compares <)
      ]),
    ).toEqual(["continue", "sync", "continue", "sync", "stop", "continue"]);
    // no bandwidth estimate: threshold 0, only an empty remainder stops, without a sync
    expect(
      actions(q, [stats(0, 5, { bandwidthBytesPerSecond: 0 }), stats(1, 0, { bandwidthBytesPerSecond: 0 })]),
    ).toEqual(["continue", "stop"]);
    expect(q.decide(stats(1, 299)).reason).toMatch(/1224704 B < threshold 1228800 B/);
  });

  it("xen: < 50 pages or 5 rounds", () => {
    const x = createPolicy("termination", "xen");
    expect(actions(x, [stats(0, 50), stats(1, 49), stats(3, 500), stats(4, 500)])).toEqual([
      "continue",
      "stop",
      "continue",
      "stop!",
    ]);
  });

  it("xen-legacy: 30 rounds, 3× the guest sent, or < 50 pages", () => {
    const x = createPolicy("termination", "xen-legacy");
    expect(
      actions(x, [
        stats(5, 60, { pagesSent: 300 }), // exactly 3× 100: not more
        stats(6, 60, { pagesSent: 301 }),
        stats(28, 60),
        stats(29, 60),
        stats(29, 49),
      ]),
    ).toEqual(["continue", "stop!", "continue", "stop!", "stop"]);
  });

  it("max-rounds: a fixed number of rounds, or nothing pending", () => {
    const m = createPolicy("termination", "max-rounds", { maxRounds: 3 });
    expect(actions(m, [stats(0, 10), stats(1, 10), stats(2, 10)])).toEqual(["continue", "continue", "stop!"]);
    expect(actions(m, [stats(0, 0)])).toEqual(["stop"]);
  });

  it("adaptive: stops when the pending set fails to shrink by > 10 % twice in a row", () => {
    const a = createPolicy("termination", "adaptive", {});
    const nb = { bandwidthBytesPerSecond: 0 };
    // 1000 → 800 (−20 %) → 750 (−6 %: stall 1) → 600 (−20 %: reset) → 560 (stall 1) → 530 (stall 2)
    expect(
      actions(
        a,
        [1000, 800, 750, 600, 560, 530].map((n, r) => stats(r, n, nb)),
      ),
    ).toEqual(["continue", "continue", "continue", "continue", "continue", "stop!"]);
    // the remainder fits the downtime: converged stop
    expect(actions(a, [stats(0, 1000), stats(1, 299)])).toEqual(["continue", "stop"]);
    expect(actions(a, [stats(0, 1000, nb), stats(1, 0, nb)])).toEqual(["continue", "stop"]);
  });
});
