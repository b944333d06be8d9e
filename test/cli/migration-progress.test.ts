// The command line's progress display over a real (in-process) migration: a terminal gets
// one redrawn line with the round, %, bytes, rate and ETA; --progress=json gets one JSON
// object per line; a pipe without a format gets nothing.
import { describe, expect, it, vi } from "vitest";
import { compareCommand } from "../../src/cli/commands/compare.js";
import { simulateCommand } from "../../src/cli/commands/simulate.js";
import {
  destinationProgressLine,
  showDestinationProgress,
  showSourceProgress,
  sourceProgressLine,
  type ProgressMode,
} from "../../src/cli/migration-progress.js";
import { seededRandom } from "../../src/util/random.js";
import { createMigrationPair } from "../support/migration-pair.js";

class Capture {
  text = "";
  constructor(readonly isTTY: boolean) {}
  write(s: string) {
    this.text += s;
  }
}

async function migrate(mode: ProgressMode, tty: boolean) {
  const pair = await createMigrationPair({
    pages: 2048,
    mode: "precopy",
    source: { maxRounds: 3, progressIntervalMs: 0 },
  });
  const b = pair.src.bytes();
  const rnd = seededRandom(9);
  for (let i = 0; i < b.length; i++) b[i] = rnd() * 256; // incompressible: megabytes go
  const src = new Capture(tty);
  const dst = new Capture(tty);
  const endSource = showSourceProgress(pair.source, mode, src);
  const endDestination = showDestinationProgress(pair.destination, mode, dst);
  const { report } = await pair.run();
  endSource();
  endDestination();
  return { report, src: src.text, dst: dst.text };
}

describe("command-line progress", () => {
  it("a terminal gets one redrawn line (carriage returns, no newlines) with the migration's figures", async () => {
    const { src, dst } = await migrate("auto", true);
    expect(src).toContain("\r");
    expect(src).not.toContain("\n");
    // the bar redraws at most every 100 ms: how many lines a short run gets depends on the machine
    expect(src).toMatch(/precopy round 0 +\d+% +[\d.]+ (B|KiB|MiB) sent +[\d.]+ (B|KiB|MiB)\/s +remaining/);
    expect(dst).toMatch(/received/);
  });

  it("--progress=json: every line is a JSON event; the last says the guest runs at the destination", async () => {
    const { report, src, dst } = await migrate("json", false);
    const events = src
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const kinds = events.map((e) => e.event);
    expect(kinds[0]).toBe("handshake");
    expect(kinds.filter((k) => k === "round-end").length).toBe(report.rounds.length);
    expect(kinds).toContain("progress");
    expect(kinds.at(-1)).toBe("activate");
    const progress = events.filter((e) => e.event === "progress");
    expect(progress.at(-1).transferred).toBe(report.ram.transferred);
    expect(progress.every((e) => typeof e.remaining === "number" && typeof e.expectedDowntimeMs === "number")).toBe(
      true,
    );
    const d = dst
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).event);
    expect(d[0]).toBe("handshake");
    expect(d).toContain("prepared");
    expect(d.at(-1)).toBe("progress"); // the final snapshot follows the activation
  });

  it("a pipe without --progress gets nothing; --progress=off nothing on a terminal either", async () => {
    expect((await migrate("auto", false)).src).toBe("");
    expect((await migrate("off", true)).src).toBe("");
  });

  it("the lines name phase, %, bytes, rate, remaining, dirty rate, expected downtime and ETA", () => {
    const line = sourceProgressLine({
      phase: "precopy",
      round: 3,
      elapsedMs: 2000,
      transferred: 200 * 2 ** 20,
      total: 1024 * 2 ** 20,
      remaining: 256 * 2 ** 20,
      pagesSent: 51200,
      mbps: 838.9,
      dirtyPagesRate: 1200,
      expectedDowntimeMs: 2560.4,
    });
    expect(line).toBe(
      "precopy round 3  75%  200.0 MiB sent  100.0 MiB/s  remaining 256.0 MiB  dirty 1200 pages/s  expected downtime 2560 ms  ETA 2.6 s",
    );
    expect(
      destinationProgressLine({
        state: "receiving",
        round: 2,
        elapsedMs: 1000,
        pagesReceived: 10,
        bytesReceived: 2 ** 20,
        missingPages: 0,
      }),
    ).toBe("receiving  round 2 in  1.0 MiB received  1.0 MiB/s  10 pages");
  });
});

describe("simulate and compare with --progress=json", () => {
  const stderrOf = async (run: () => Promise<number>) => {
    let text = "";
    const spy = vi.spyOn(process.stderr, "write").mockImplementation((s: string | Uint8Array) => {
      text += String(s);
      return true;
    });
    vi.spyOn(console, "log").mockImplementation(() => {});
    try {
      expect(await run()).toBe(0);
    } finally {
      spy.mockRestore();
      vi.restoreAllMocks();
    }
    return text
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l));
  };

  it("simulate: progress lines in virtual time, rounds in order, bytes growing", async () => {
    const events = await stderrOf(() =>
      simulateCommand.run(["--guest-size", "16MiB", "--bandwidth", "20MiB/s", "--progress", "json"]),
    );
    expect(events.length).toBeGreaterThan(3);
    expect(events.every((e) => e.event === "progress")).toBe(true);
    for (let i = 1; i < events.length; i++) {
      expect(events[i].virtualSeconds).toBeGreaterThanOrEqual(events[i - 1].virtualSeconds);
      expect(events[i].transferred).toBeGreaterThanOrEqual(events[i - 1].transferred);
      expect(events[i].round).toBeGreaterThanOrEqual(events[i - 1].round);
    }
    expect(events.some((e) => e.paused)).toBe(true);
  });

  it("compare: one line per finished run", async () => {
    const events = await stderrOf(() =>
      compareCommand.run([
        "--preset",
        "qemu,pagewire",
        "--workload",
        "idle",
        "--guest-size",
        "16MiB",
        "--bandwidth",
        "100MiB/s",
        "--progress",
        "json",
      ]),
    );
    expect(events.map((e) => [e.event, e.index, e.total])).toEqual([
      ["run", 1, 2],
      ["run", 2, 2],
    ]);
    expect(events.every((e) => e["total-time-ms"] > 0)).toBe(true);
  });
});
