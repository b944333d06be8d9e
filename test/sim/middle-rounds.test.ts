// Issue 17: no selection policy may send nothing in every middle round (the pre-copy rounds
// between round 0 and stop-and-copy) on a real recording, with the simulator's defaults —
// history-threshold's included: a warm-up of 255 sync periods from the boot (sim/warm-up.ts).
import { describe, expect, it } from "vitest";
import { listPolicies } from "../../src/policy/registry.js";
import { findPreset } from "../../src/sim/presets.js";
import { runScenario } from "../../src/sim/simulator.js";
import { openRecording, TraceWorkload } from "../../src/workload/trace.js";

// 10 MiB/s: the dirtier guest does not converge after round 0 with any policy, so every
// run has middle rounds (at 100 MiB/s the recordings converge after round 0)
const BANDWIDTH = 10 * 2 ** 20;

describe("every selection policy sends pages in some middle round of the dirtier recording", () => {
  const rec = openRecording("dirtier");
  const qemu = findPreset("qemu")!;
  for (const { name } of listPolicies("selection")) {
    it(`${name}`, async () => {
      const r = await runScenario({
        workload: new TraceWorkload(rec),
        pageCount: rec.pageCount,
        bandwidth: BANDWIDTH,
        codecs: qemu.codecs,
        policy: { ...qemu.policy, selection: name },
        downtimeLimitMs: qemu.downtimeLimitMs,
        seed: 1,
        destinationGuest: false,
      });
      expect(r.verified).toBe(true);
      const middle = r.report.rounds.filter((x) => x.phase === "precopy").slice(1);
      expect(middle.length).toBeGreaterThanOrEqual(1);
      expect(middle.map((x) => x.sent).some((sent) => sent > 0)).toBe(true);
      if (name === "history-threshold") expect(r.warmup).toMatchObject({ seconds: 255, syncs: 256 });
      else expect(r.warmup).toBeUndefined();
    }, 120_000);
  }
});
