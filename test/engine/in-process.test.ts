import { describe, expect, it } from "vitest";
import { PAGE_SIZE } from "../../src/index.js";
import type { MigrationMode } from "../../src/engine/source.js";
import { listPolicies } from "../../src/policy/registry.js";
import { IMPLEMENTED_FEATURES, type Feature } from "../../src/engine/features.js";
import { loadRecording } from "../../src/memory/recording.js";
import { makeTextPage } from "../support/lz-oracle.js";
import { createMigrationPair } from "../support/migration-pair.js";
import { rng, randInt } from "../support/random.js";

// The guests write on the virtual clock (test/support/guest-writer.ts): each run is the
// same run, whatever the machine's speed.
describe("in-process migration", () => {
  for (const mode of ["precopy", "stop-and-copy", "postcopy", "hybrid", "auto"] as MigrationMode[]) {
    it(`${mode}: destination equals the source at the pause, and the report adds up`, async () => {
      const pages = 2048;
      // post-copy: the destination guest touches pages as soon as it runs
      const touched: Promise<void>[] = [];
      const pair = await createMigrationPair({
        pages,
        mode,
        clock: "virtual",
        writer: { seed: 7 },
        source: {
          maxBandwidth: 200e6,
          downtimeLimitMs: 5,
          maxRounds: 6,
          autoProbeMs: 20,
          deviceState: () => new Uint8Array([1, 2, 3]),
        },
        onActivate: (d) => {
          if (d.running && touched.length === 0) for (let p = 0; p < pages; p += 97) touched.push(d.ensurePage(p));
        },
      });
      const r = rng(1);
      const init = pair.src.bytes();
      for (let p = 0; p < pages; p++)
        if (p % 3 !== 0) for (let j = 0; j < 64; j++) init[p * PAGE_SIZE + randInt(r, PAGE_SIZE)] = randInt(r, 256);
      const { report, result } = await pair.run();
      await Promise.all(touched);
      expect(pair.writer!.writes).toBeGreaterThan(0);
      expect(pair.resumed).toBe(false);
      expect(report.status).toBe("completed");
      expect(result.committed).toBe(true);
      expect(Array.from(result.deviceState)).toEqual([1, 2, 3]);
      expect(Buffer.compare(pair.dst.bytes(), pair.atPause!)).toBe(0);
      const sent = report.rounds.reduce((s, row) => s + row.sent, 0);
      expect(report.ram["pages-sent"]).toBe(sent);
      const ram = report.ram;
      expect(
        ram.duplicate + ram.normal + ram["xbzrle-pages"] + ram["rle-pages"] + ram["lz-pages"] + ram["dedup-pages"],
      ).toBe(sent);
      const sum = (k: "xbzrle" | "rle" | "lz" | "dedup" | "raw") => report.rounds.reduce((s, row) => s + row[k], 0);
      expect([sum("xbzrle"), sum("rle"), sum("lz"), sum("dedup"), sum("raw")]).toEqual([
        ram["xbzrle-pages"],
        ram["rle-pages"],
        ram["lz-pages"],
        ram["dedup-pages"],
        ram.normal,
      ]);
      expect(report.rounds.reduce((s, row) => s + row.zero, 0)).toBe(report.ram.duplicate);
      expect(report.ram.transferred).toBe(pair.sourceTransport.bytesSent);
      expect(report.ram.transferred).toBeGreaterThan(report.ram.normal * PAGE_SIZE);
      if (mode === "precopy" || mode === "hybrid") expect(report.rounds.length).toBeGreaterThan(1);
      if (mode === "postcopy" || mode === "hybrid") expect(report.rounds.at(-1)!.phase).toBe("postcopy");
      if (mode === "stop-and-copy") expect(report.rounds.length).toBe(1);
      if (mode === "auto") expect(report.decisions[0].kind).toBe("auto");
    });
  }
});

// LZ is negotiated like every codec: on by default, off when the destination does not accept "lz".
describe("the lz codec in a migration", () => {
  const run = async (destinationFeatures?: Feature[]) => {
    const pages = 1024;
    const pair = await createMigrationPair({ pages, destinationFeatures, source: { maxRounds: 3 } });
    // real guest pages (the idle recording: kernel text and data, page cache), then text-like ones
    const init = pair.src.bytes();
    const image = loadRecording("idle").base;
    init.set(image.subarray(4096 * PAGE_SIZE, (4096 + pages / 2) * PAGE_SIZE));
    const p = new Uint8Array(PAGE_SIZE);
    const r = rng(3);
    for (let i = pages / 2; i < pages; i++) {
      makeTextPage(r, p);
      init.set(p, i * PAGE_SIZE);
    }
    const { report } = await pair.run();
    expect(report.status).toBe("completed");
    expect(Buffer.compare(pair.dst.bytes(), pair.atPause!)).toBe(0);
    expect(report.rounds.reduce((s, row) => s + row.lz, 0)).toBe(report.ram["lz-pages"]);
    return report;
  };

  it("negotiated (the default): LZ records, and the destination holds the source's memory", async () => {
    const report = await run();
    expect(report.ram["lz-pages"]).toBeGreaterThan(400);
  });

  it("a destination that does not accept lz gets no LZ records, and more bytes", async () => {
    const on = await run();
    const off = await run(IMPLEMENTED_FEATURES.filter((f) => f !== "lz"));
    expect(off.ram["lz-pages"]).toBe(0);
    expect(off.ram.transferred).toBeGreaterThan(on.ram.transferred * 1.3);
  });
});

describe("a guest on the virtual clock", () => {
  it("repeats: two runs with one writer seed give the same rounds and the same memory; another seed differs", async () => {
    const once = async (seed: number) => {
      const pair = await createMigrationPair({
        pages: 512,
        kernels: "one",
        clock: "virtual",
        writer: { seed },
        source: { maxRounds: 5, downtimeLimitMs: 1 },
      });
      const { report } = await pair.run();
      const out = {
        rounds: JSON.stringify(report.rounds),
        decisions: JSON.stringify(report.decisions),
        writes: pair.writer!.writes,
        memory: pair.atPause!,
      };
      expect(Buffer.compare(pair.dst.bytes(), out.memory)).toBe(0);
      return out;
    };
    const [a, b, c] = [await once(3), await once(3), await once(4)];
    expect(a.rounds).toBe(b.rounds);
    expect(a.decisions).toBe(b.decisions);
    expect(a.writes).toBe(b.writes);
    expect(a.writes).toBeGreaterThan(0);
    expect(JSON.parse(a.rounds)[1].dirtied, "the guest wrote while round 0 was sent").toBeGreaterThan(0);
    expect(Buffer.compare(a.memory, b.memory)).toBe(0);
    expect(Buffer.compare(a.memory, c.memory)).not.toBe(0);
  });
});

describe("every policy end to end", () => {
  const selections = listPolicies("selection").map((p) => p.name);
  const terminations = listPolicies("termination").map((p) => p.name);
  const nonConvergence = listPolicies("non-convergence").map((p) => p.name);
  for (const selection of selections) {
    it(`selection ${selection}: the destination equals the source at the pause`, async () => {
      for (const [i, termination] of terminations.entries()) {
        const pair = await createMigrationPair({
          pages: 1500,
          kernels: "one",
          clock: "virtual",
          writer: { seed: 100 + i },
          policy: { selection, termination, nonConvergence: nonConvergence[i % nonConvergence.length] },
          // rounds that defer wait for the next sync: 20 ms keeps the writer's virtual seconds few
          source: { maxRounds: 8, downtimeLimitMs: 2, minRoundMs: 20 },
        });
        const { report } = await pair.run();
        expect(pair.writer!.writes).toBeGreaterThan(0);
        expect(report.status).toBe("completed");
        expect(Buffer.compare(pair.dst.bytes(), pair.atPause!), `${selection} + ${termination}`).toBe(0);
        expect(report.decisions[0].decision).toContain(selection);
        pair.dispose();
      }
    });
  }
});

describe("keyed frames", () => {
  it("a migration with a pre-shared key completes on shared kernels (HMAC over shared memory)", async () => {
    const pair = await createMigrationPair({ pages: 300, shared: true, key: "a-pre-shared-key-of-enough-bytes" });
    pair.src.bytes().fill(7, 0, 100 * PAGE_SIZE);
    const { report } = await pair.run();
    expect(report.status).toBe("completed");
    expect(Buffer.compare(pair.dst.bytes(), pair.src.bytes())).toBe(0);
  });
});

describe("xen-to-skip sees the live log", () => {
  it("pages dirtied again since the harvest are skipped in that round (and still arrive)", async () => {
    let harvests = 0;
    // the guest rewrites pages 0..63 just before and right after every harvest: they are
    // candidates of the next round and already re-dirtied when it starts
    const touch = () => {
      for (let p = 0; p < 64; p++) pair.src.write(p * PAGE_SIZE, new Uint8Array([harvests, p]));
    };
    const pair = await createMigrationPair({
      pages: 512,
      kernels: "one",
      policy: { selection: "xen-to-skip", termination: "max-rounds" },
      source: { maxRounds: 4, downtimeLimitMs: 0 },
      dirtyLog: (log) => ({
        ...log,
        harvest: (into) => {
          if (++harvests < 4) touch();
          log.harvest(into);
          if (harvests < 4) touch();
        },
      }),
    });
    const { report } = await pair.run();
    expect(Buffer.compare(pair.dst.bytes(), pair.src.bytes())).toBe(0);
    const middle = report.rounds.filter((r) => r.phase === "precopy" && r.round > 0);
    expect(middle.length).toBeGreaterThan(0);
    for (const r of middle) expect(r.deferred, JSON.stringify(report.rounds)).toBeGreaterThan(0);
  });
});
