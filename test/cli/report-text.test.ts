// The text report: aligned columns, units, rounded numbers, decisions in words, and the
// "stopped by" field set by what really ended pre-copy in a run.
import { describe, expect, it } from "vitest";
import { describeDecision } from "../../src/engine/report-text.js";
import { MigrationReport, ROUND_COLUMNS } from "../../src/engine/report.js";
import { runScenario } from "../../src/sim/simulator.js";
import { textTable } from "../../src/util/text-table.js";
import { createWorkload } from "../../src/workload/registry.js";

/** Numbers printed with more than 3 decimals ("0.4945384450631827"). */
const LONG_DECIMALS = /\d\.\d{4,}/;

/**
 * Each column takes one character range in every line (columns two spaces apart, as wide
 * as their widest cell): the cell is found there, flush left or flush right.
 */
function expectAligned(lines: string[], cells: string[][], align: Array<"left" | "right">) {
  expect(new Set(lines.map((l) => l.length)).size).toBe(1);
  let start = 0;
  align.forEach((side, c) => {
    const width = Math.max(...cells.map((row) => row[c].length));
    lines.forEach((line, i) => {
      const slot = line.slice(start, start + width);
      expect(slot.trim(), `column ${c} of: ${line}`).toBe(cells[i][c]);
      if (cells[i][c]) expect(side === "left" ? slot.startsWith(cells[i][c]) : slot.endsWith(cells[i][c])).toBe(true);
    });
    start += width + 2;
  });
}

function awkwardReport(): MigrationReport {
  const r = new MigrationReport();
  r.totalTime = 2960.126349876;
  r.downtime = 858.3333333333334;
  r.setupTime = 1.50312;
  r.ram.transferred = 356264960;
  r.ram.total = 1 << 30;
  r.ram.mbps = 962.8371234567;
  r.ram["dirty-pages-rate"] = 14271.33333333;
  r["xbzrle-cache"] = {
    "cache-size": 64 << 20,
    "cache-miss-rate": 0.4945384450631827,
    "encoding-rate": 17.673564984816803,
  };
  r.postcopy = {
    "pages-requested": 12,
    "pages-pushed": 300,
    "fault-latency-p50-ms": 0.123456789,
    "fault-latency-p99-ms": 4.56789123,
  };
  r.stoppedBy = "force-stop";
  const counts = { skipped: 0, zero: 60960, dedup: 18867, xbzrle: 0, rle: 62552, lz: 113946, raw: 5819 };
  r.rounds.push({
    round: 0,
    phase: "precopy",
    dirtied: 262144,
    sent: 262144,
    deferred: 0,
    ...counts,
    bytes: 322257131,
    seconds: 2.5791234,
  });
  r.rounds.push({
    round: 1,
    phase: "stop-and-copy",
    dirtied: 4669,
    sent: 3021,
    deferred: 0,
    ...counts,
    bytes: 3690591,
    seconds: 0.0301,
  });
  r.decisions.push({ round: 0, kind: "policies", decision: "vanilla / qemu / force-stop" });
  r.decisions.push({
    round: 0,
    kind: "non-convergence",
    decision: "force-stop: stop",
    inputs: { pendingPages: 52000, bandwidthBytesPerSecond: 124852764.33, downtimeLimitMs: 300 },
    stoppedBy: "force-stop",
  });
  r.decisions.push({
    round: 0,
    kind: "auto",
    decision: "precopy, vanilla selection: dirty rate low",
    inputs: {
      dirtyPagesPerSecond: 1234.5678,
      zeroShare: 0.12345,
      probeSeconds: 0.2,
      bandwidthBytesPerSecond: 104857600,
    },
  });
  return r;
}

describe("text tables", () => {
  it("pad every cell of a column to one width, with units under the heads", () => {
    const rows = [
      ["trace:redis", "10 MiB/s", "5005.9", "force-stop"],
      ["working-set (32 MiB)", "100 MiB/s", "18.3", "qemu rule"],
      ["x", "1 Gbit/s", "123456.7", "round cap after throttle to 40 %"],
    ];
    const lines = textTable(
      [
        { head: "guest", align: "left" },
        { head: "bandwidth", align: "left" },
        { head: "total-time", unit: "ms" },
        { head: "stopped by", align: "left" },
      ],
      rows,
    );
    expect(lines).toHaveLength(2 + rows.length);
    expectAligned(
      lines,
      [["guest", "bandwidth", "total-time", "stopped by"], ["", "", "ms", ""], ...rows],
      ["left", "left", "right", "left"],
    );
    expect(lines[1].trim()).toBe("ms");
  });
});

describe("MigrationReport.toTable", () => {
  const report = awkwardReport();
  const text = report.toTable();
  const lines = text.split("\n");

  it("prints no number with more than 3 decimals (nor does its JSON)", () => {
    expect(text).not.toMatch(LONG_DECIMALS);
    expect(JSON.stringify(report.toJSON())).not.toMatch(LONG_DECIMALS);
    expect(text).toMatch(/^total-time +2960\.1 ms$/m);
    expect(text).toMatch(/^xbzrle-cache\.cache-miss-rate +0\.495$/m);
    expect(text).toMatch(/^postcopy\.fault-latency-p99-ms +4\.57 ms$/m);
    expect(text).toMatch(/^mbps +962\.8 Mbit\/s$/m);
  });

  it("lines up the summary values and the round table's columns", () => {
    const summary = lines.slice(0, lines.indexOf(""));
    const valueStarts = summary.map((l) => l.search(/ {2}\S/) + 2);
    expect(new Set(valueStarts).size).toBe(1);
    expect(summary.find((l) => l.startsWith("stopped-by"))).toMatch(/ force-stop$/);
    const head = lines.findIndex((l) => l.startsWith("round  "));
    const table = lines.slice(head, head + 2 + report.rounds.length);
    expect(table[0].trim().split(/\s+/)).toEqual([...ROUND_COLUMNS]);
    expect(table[1]).toMatch(/pages .* MiB +s$/);
    const cells = table.map((l) => l.trim().split(/\s+/));
    cells[1] = ROUND_COLUMNS.map((c) =>
      c === "bytes" ? "MiB" : c === "seconds" ? "s" : c === "round" || c === "phase" ? "" : "pages",
    );
    expectAligned(
      table,
      cells,
      ROUND_COLUMNS.map((c) => (c === "phase" ? "left" : "right")),
    );
    expect(table[2]).toContain("307.328"); // 322257131 bytes in MiB, 3 decimals
  });

  it("states decisions in words, not JSON", () => {
    const decisions = lines.filter((l) => /^round \d+ {2}/.test(l));
    expect(decisions).toHaveLength(3);
    for (const d of decisions) expect(d).not.toMatch(/[{}"]/);
    expect(decisions[0]).toBe("round 0  policies: selection vanilla, termination qemu, non-convergence force-stop");
    // 52000 pages × 4096 B / 124852764 B/s = 1706 ms
    expect(decisions[1]).toContain("stop (force-stop) — expected downtime 1706 ms > limit 300 ms");
    expect(decisions[1]).toContain("52000 pages (203.1 MiB) pending at 119.1 MiB/s");
    expect(decisions[2]).toContain("dirty pages 1235/s");
    expect(decisions[2]).toContain("zero share 12.3 %");
    expect(decisions[2]).toContain("bandwidth 100.0 MiB/s");
  });

  it("a termination stop reads as QEMU's expected downtime against the limit", () => {
    const line = describeDecision(
      {
        round: 7,
        kind: "termination",
        decision: "qemu: pending 22228992 B < threshold 31457280 B",
        inputs: { pendingPages: 5427, bandwidthBytesPerSecond: 104857600, downtimeLimitMs: 300 },
        stoppedBy: "qemu rule",
      },
      4096,
    );
    expect(line).toBe(
      "round 7  termination: stop (qemu rule) — expected downtime 212 ms ≤ limit 300 ms: 5427 pages (21.2 MiB) pending at 100.0 MiB/s; qemu: pending 21.2 MiB < threshold 30.0 MiB",
    );
  });
});

describe("stopped by", () => {
  // a 16 MiB guest at 100 MiB/s: each case takes well under a second of virtual time
  const run = (o: {
    workload: string;
    downtimeLimitMs?: number;
    maxRounds?: number;
    termination?: string;
    nonConvergence?: string;
    mode?: "precopy" | "stop-and-copy";
  }) =>
    runScenario({
      workload: createWorkload(o.workload, { seed: 3 }),
      pageCount: 4096,
      bandwidth: 100 * 2 ** 20,
      downtimeLimitMs: o.downtimeLimitMs ?? 300,
      maxRounds: o.maxRounds,
      mode: o.mode,
      policy: { selection: "vanilla", termination: o.termination ?? "qemu", nonConvergence: o.nonConvergence },
    }).then((r) => r.report);

  const stopDecision = (r: MigrationReport) => r.decisions.filter((d) => d.stoppedBy);

  it("names the rule, the round cap, force-stop, the post-copy switch, and the mode", async () => {
    const converged = await run({ workload: "working-set" });
    expect(converged.stoppedBy).toBe("qemu rule");
    expect(stopDecision(converged).map((d) => d.kind)).toEqual(["termination"]);

    // a write storm never gets under a 5 ms limit: the cap stops it, or force-stop does first
    const capped = await run({ workload: "write-storm", downtimeLimitMs: 5, maxRounds: 3 });
    expect(capped.stoppedBy).toBe("round cap");
    expect(capped.rounds.filter((r) => r.phase === "precopy")).toHaveLength(3);
    const forced = await run({ workload: "write-storm", downtimeLimitMs: 5, nonConvergence: "force-stop" });
    expect(forced.stoppedBy).toBe("force-stop");
    expect(forced.toTable()).toMatch(/^stopped-by +force-stop$/m);
    const switched = await run({ workload: "write-storm", downtimeLimitMs: 5, nonConvergence: "postcopy" });
    expect(switched.mode).toBe("hybrid");
    expect(switched.stoppedBy).toBe("post-copy switch");
    for (const r of [capped, forced, switched]) {
      const [d] = stopDecision(r);
      expect(d.stoppedBy).toBe(r.stoppedBy);
      expect((r.toJSON() as Record<string, unknown>)["stopped-by"]).toBe(r.stoppedBy);
    }
    const nonLive = await run({ workload: "working-set", mode: "stop-and-copy" });
    expect(nonLive.stoppedBy).toBe("stop-and-copy mode");
  });

  it("says when a throttle came before the stop", async () => {
    const r = await run({ workload: "write-storm", downtimeLimitMs: 5, maxRounds: 8, nonConvergence: "throttle" });
    expect(r.decisions.some((d) => d.decision.includes("throttle guest to"))).toBe(true);
    expect(r.stoppedBy).toMatch(/ after throttle to \d+ %$/);
  });
});
