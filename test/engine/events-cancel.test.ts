// Events, live state and cancel (#16 item 1): the events come in the order of the
// migration's stages, progress is current while running (not only at the end), and a
// cancel before the decision aborts with CANCELLED leaving the source running, while one
// after it changes nothing.
import { describe, expect, it } from "vitest";
import { PAGE_SIZE } from "../../src/index.js";
import type { MigrationMode } from "../../src/engine/source.js";
import type { MigrationProgress } from "../../src/engine/migration-events.js";
import { createMigrationPair } from "../support/migration-pair.js";

const PAGES = 2048;

async function pair(mode: MigrationMode, signals?: { source?: AbortSignal; destination?: AbortSignal }) {
  const p = await createMigrationPair({
    pages: PAGES,
    mode,
    clock: "virtual",
    writer: { seed: 3 },
    trackCommit: true,
    signals,
    // 100 MB/s on the virtual link: a round of 8 MiB lasts ~80 ms, several progress intervals
    link: { bandwidth: 100e6 },
    source: { maxBandwidth: 100e6, downtimeLimitMs: 5, maxRounds: 5, progressIntervalMs: 10 },
    onActivate: (d) => {
      if (d.running) for (let page = 0; page < PAGES; page += 301) void d.ensurePage(page).catch(() => {});
    },
  });
  const b = p.src.bytes();
  for (let i = 0; i < b.length; i += 64) b[i] = (i * 7 + 1) & 255;
  return p;
}

describe("migration events", () => {
  for (const mode of ["precopy", "hybrid", "postcopy", "stop-and-copy"] as MigrationMode[]) {
    it(`${mode}: stages in order, live progress, destination events`, async () => {
      const p = await pair(mode);
      const seen: string[] = [];
      const progress: MigrationProgress[] = [];
      let liveTransferred = 0;
      for (const type of [
        "handshake",
        "round-start",
        "round-end",
        "pause",
        "postcopy",
        "commit",
        "activate",
        "abort",
      ] as const)
        p.source.on(type, (e) => seen.push(e.type));
      p.source.on("progress", (e) => {
        progress.push(e.progress);
        if (e.progress.phase !== "done") liveTransferred = Math.max(liveTransferred, p.source.report.ram.transferred);
      });
      const dstSeen: string[] = [];
      for (const type of ["handshake", "round-end", "prepared", "postcopy", "activate"] as const)
        p.destination.on(type, (e) => dstSeen.push(e.type));
      let dstProgress = 0;
      p.destination.on("progress", (e) => (dstProgress = Math.max(dstProgress, e.progress.bytesReceived)));

      const { report } = await p.run();

      // the order of the stages
      const squeeze = seen.filter((t, i) => t !== seen[i - 1] || !t.startsWith("round"));
      const first = (t: string) => seen.indexOf(t);
      expect(seen[0]).toBe("handshake");
      expect(seen.at(-1)).toBe("activate");
      expect(first("pause")).toBeGreaterThan(first("handshake"));
      if (mode === "precopy" || mode === "stop-and-copy") {
        expect(seen.slice(-2)).toEqual(["commit", "activate"]);
        expect(seen).not.toContain("postcopy");
      } else {
        expect(first("postcopy")).toBeGreaterThan(first("pause"));
        // the decision is the switch; the commit (after the last page) follows it
        expect(first("commit")).toBeGreaterThan(first("postcopy"));
      }
      expect(squeeze).not.toContain("abort");
      // every round row came with its start and end, in order
      const starts = seen.filter((t) => t === "round-start").length;
      expect(starts).toBe(report.rounds.length);
      expect(seen.filter((t) => t === "round-end").length).toBe(report.rounds.length);

      // progress: current while running, monotonic bytes, a final snapshot that matches the report
      expect(progress.length).toBeGreaterThan(report.rounds.length);
      for (let i = 1; i < progress.length; i++)
        expect(progress[i].transferred).toBeGreaterThanOrEqual(progress[i - 1].transferred);
      expect(liveTransferred).toBeGreaterThan(0);
      expect(liveTransferred).toBeLessThanOrEqual(report.ram.transferred);
      const last = progress.at(-1)!;
      expect(last.phase).toBe("done");
      expect(last.remaining).toBe(0);
      expect(last.transferred).toBe(report.ram.transferred);
      expect(report.ram.remaining).toBe(0);
      const mid = progress.filter((x) => x.phase === "precopy" && x.remaining > 0);
      if (mode === "precopy" || mode === "hybrid") {
        expect(mid.length).toBeGreaterThan(0);
        expect(mid.every((x) => x.remaining <= PAGES * PAGE_SIZE + 0)).toBe(true);
        expect(mid.some((x) => x.expectedDowntimeMs > 0)).toBe(true);
        expect(progress.some((x) => x.dirtyPagesRate > 0)).toBe(true);
      }

      if (mode === "postcopy" || mode === "hybrid") {
        const pushed = progress.filter((x) => x.phase === "postcopy");
        expect(pushed.length).toBeGreaterThan(1);
        expect(pushed.at(-1)!.remaining).toBeLessThan(pushed[0].remaining);
      }
      expect(dstSeen[0]).toBe("handshake");
      expect(dstSeen.at(-1)).toBe("activate");
      if (mode === "precopy") expect(dstSeen).toContain("round-end");
      expect(dstSeen.includes("prepared")).toBe(true);
      expect(dstProgress).toBeGreaterThan(0);
    });
  }

  it("a listener that throws does not fail the migration", async () => {
    const p = await pair("precopy");
    p.source.on("progress", () => {
      throw new Error("display broke");
    });
    const { report } = await p.run();
    expect(report.status).toBe("completed");
    expect(p.source.events.listenerErrors.length).toBeGreaterThan(0);
  });
});

describe("cancel", () => {
  it("source cancelled during pre-copy: CANCELLED, the source runs, the destination discards", async () => {
    const ctl = new AbortController();
    const p = await pair("precopy", { source: ctl.signal });
    p.source.on("round-end", (e) => e.row.round === 1 && ctl.abort());
    const [s, d] = await p.settle();
    expect(s.status).toBe("rejected");
    const err = (s as PromiseRejectedResult).reason;
    expect(err.code).toBe("MIGRATION_ABORTED");
    expect(err.cause.code).toBe("CANCELLED");
    expect(err.report.error.code).toBe("CANCELLED");
    expect(p.source.state).toBe("aborted");
    expect(p.paused).toBe(false);
    expect(d.status).toBe("rejected");
    expect(p.destination.state).toBe("discarded");
    expect(p.discarded).toBe(true);
    expect(p.committed).toBe(false);
  });

  it("source cancelled while paused: CANCELLED and the guest resumes on the source", async () => {
    const ctl = new AbortController();
    const p = await pair("precopy", { source: ctl.signal });
    p.source.on("pause", () => ctl.abort(new Error("operator pressed ^C")));
    const [s] = await p.settle();
    const err = (s as PromiseRejectedResult).reason;
    expect(err.cause.code).toBe("CANCELLED");
    expect(err.message).toContain("operator pressed ^C");
    expect(p.paused).toBe(true);
    expect(p.resumed).toBe(true);
    expect(p.discarded).toBe(true);
    expect(p.committed).toBe(false);
  });

  it("a signal already aborted: nothing is sent, the source runs", async () => {
    const p = await pair("precopy", { source: AbortSignal.abort() });
    const [s] = await p.settle();
    expect((s as PromiseRejectedResult).reason.cause.code).toBe("CANCELLED");
    expect(p.source.report.rounds.length).toBe(0);
    expect(p.paused).toBe(false);
  });

  for (const at of ["commit", "postcopy"] as const) {
    it(`a cancel after the decision (${at}) changes nothing: the destination runs`, async () => {
      const ctl = new AbortController();
      const p = await pair(at === "commit" ? "precopy" : "hybrid", { source: ctl.signal });
      p.source.on(at, () => ctl.abort());
      const { report, result } = await p.run();
      expect(ctl.signal.aborted).toBe(true);
      expect(report.status).toBe("completed");
      expect(result.committed).toBe(true);
      expect(p.resumed).toBe(false);
      expect(Buffer.compare(p.dst.bytes(), p.atPause!)).toBe(0);
    });
  }

  it("destination cancelled while receiving: it discards, the source aborts and runs", async () => {
    const ctl = new AbortController();
    const p = await pair("precopy", { destination: ctl.signal });
    p.destination.on("round-end", () => ctl.abort());
    const [s, d] = await p.settle();
    expect(d.status).toBe("rejected");
    expect((d as PromiseRejectedResult).reason.code).toBe("CANCELLED");
    expect(p.destination.state).toBe("discarded");
    expect(s.status).toBe("rejected");
    expect((s as PromiseRejectedResult).reason.message).toContain("CANCELLED");
    expect(p.source.state).toBe("aborted");
    expect(p.committed).toBe(false);
  });

  it("destination cancelled once prepared: ignored, the migration completes", async () => {
    const ctl = new AbortController();
    const p = await pair("precopy", { destination: ctl.signal });
    p.destination.on("prepared", () => ctl.abort());
    const { report } = await p.run();
    expect(report.status).toBe("completed");
    expect(p.destination.state).toBe("active");
  });
});
