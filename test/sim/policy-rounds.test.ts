import { beforeAll, describe, expect, it } from "vitest";
import { createPolicy, loadKernel, PagewireError, simulatePolicyRounds, type Kernel } from "../../src/index.js";

let k: Kernel;
beforeAll(async () => {
  k = await loadKernel();
});

describe("simulatePolicyRounds with a termination policy", () => {
  const busy = Array.from({ length: 10 }, () => Array.from({ length: 60 }, (_, i) => i)); // 60 pages rewritten every round

  it("xen stops after 5 pre-copy rounds when 60 pages stay dirty, then stop-and-copy sends them", async () => {
    const r = await simulatePolicyRounds({
      kernel: k,
      pageCount: 100,
      writes: busy,
      selection: createPolicy("selection", "vanilla"),
      termination: createPolicy("termination", "xen"),
    });
    expect(r.rounds.map((x) => x.sent.length)).toEqual([100, 60, 60, 60, 60, 60]);
    expect(r.rounds.map((x) => x.decision?.action)).toEqual([
      "continue",
      "continue",
      "continue",
      "continue",
      "stop",
      undefined,
    ]);
    expect(r.rounds[4].decision?.converged).toBe(false);
    expect(r.lost).toEqual([]);
    expect(r.pagesSent).toBe(400);
  });

  it("qemu syncs, then stops once the remainder fits bandwidth × downtime", async () => {
    // 100 pages per round (a round is 1 s) and 300 ms: 30 pages fit. Writes shrink 60 → 20.
    const shrinking = [[...Array(60).keys()], [...Array(40).keys()], [...Array(20).keys()], [...Array(20).keys()]];
    const r = await simulatePolicyRounds({
      kernel: k,
      pageCount: 100,
      writes: shrinking,
      selection: createPolicy("selection", "vanilla"),
      termination: createPolicy("termination", "qemu"),
      bandwidthPagesPerRound: 100,
      downtimeLimitMs: 300,
    });
    expect(r.rounds.map((x) => x.decision?.action)).toEqual(["continue", "continue", "stop", undefined]);
    expect(r.rounds[2].decision?.reason).toMatch(/81920 B < threshold 122880 B/);
    expect(r.rounds.at(-1)!.sent).toEqual([...Array(20).keys()]);
    expect(r.lost).toEqual([]);
  });

  it("rejects writes outside the guest", async () => {
    await expect(
      simulatePolicyRounds({ kernel: k, pageCount: 4, writes: [[4]], selection: createPolicy("selection", "vanilla") }),
    ).rejects.toThrowError(PagewireError);
  });
});
