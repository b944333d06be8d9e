import { describe, expect, it } from "vitest";
import { createPolicy, ThrottleNonConvergence, type NonConvergencePolicy } from "../../src/index.js";

/** (dirtied, sent) byte pairs per period → the decisions as short strings. */
function run(p: NonConvergencePolicy, periods: Array<[number, number]>): string[] {
  return periods.map(([dirtiedBytes, sentBytes], round) => {
    const d = p.check({ round, dirtiedBytes, sentBytes });
    return d.action === "throttle" ? `${d.percent}%` : d.action;
  });
}

const HIGH: [number, number] = [51, 100];
const CALM: [number, number] = [50, 100]; // exactly 50 % is not above the threshold

describe("non-convergence policies", () => {
  it("throttle: every second high period raises the throttle 20 %, +10 %, at most 99 %, through the callback", () => {
    const seen: number[] = [];
    const t = new ThrottleNonConvergence({ onThrottle: (p) => seen.push(p) });
    // the high-period counter is not reset by a calm period (as in QEMU)
    expect(run(t, [HIGH, CALM, HIGH, HIGH, HIGH])).toEqual(["none", "none", "20%", "none", "30%"]);
    expect(
      run(
        t,
        Array.from({ length: 16 }, () => HIGH),
      ).filter((x) => x !== "none"),
    ).toEqual(["40%", "50%", "60%", "70%", "80%", "90%", "99%", "99%"]);
    expect(seen).toEqual([20, 30, 40, 50, 60, 70, 80, 90, 99, 99]);
    expect(t.percent).toBe(99);
    t.reset();
    expect(run(t, [HIGH, HIGH])).toEqual(["none", "20%"]);
  });

  it("postcopy: switches once, on the second high period", () => {
    const p = createPolicy("non-convergence", "postcopy");
    expect(run(p, [CALM, HIGH, CALM, HIGH, HIGH, HIGH])).toEqual(["none", "none", "none", "postcopy", "none", "none"]);
  });

  it("force-stop: stops on the second high period", () => {
    const f = createPolicy("non-convergence", "force-stop");
    expect(run(f, [HIGH, CALM, CALM, HIGH])).toEqual(["none", "none", "none", "stop"]);
  });
});
