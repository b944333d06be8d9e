import { describe, expect, it } from "vitest";
import { createKernel, PAGE_SIZE } from "../../src/index.js";
import { MigrationDestination } from "../../src/engine/destination.js";
import { MigrationSource, type MigrationMode } from "../../src/engine/source.js";
import { WasmGuestMemory } from "../../src/memory/wasm-guest-memory.js";
import { createInProcessPair } from "../../src/transport/in-process.js";
import { listPolicies } from "../../src/policy/registry.js";
import { rng, randInt } from "../support/random.js";

/** A guest writing partial pages (zeros, counters, random bytes) until paused. */
function startGuest(mem: WasmGuestMemory, seed: number) {
  const r = rng(seed);
  let running = true;
  let writes = 0;
  const step = () => {
    if (!running) return;
    for (let i = 0; i < 50; i++) {
      const page = randInt(r, Math.min(mem.pageCount, 300)); // a hot working set
      const len = 8 + randInt(r, 200);
      const data = new Uint8Array(len);
      for (let j = 0; j < len; j++) data[j] = r() < 0.5 ? 0 : randInt(r, 256);
      mem.write(page * PAGE_SIZE + randInt(r, PAGE_SIZE - len), data);
      writes++;
    }
    setImmediate(step);
  };
  setImmediate(step);
  return { stop: () => { running = false; }, get writes() { return writes; } };
}

describe("in-process migration", () => {
  for (const mode of ["precopy", "stop-and-copy", "postcopy", "hybrid", "auto"] as MigrationMode[]) {
    it(`${mode}: destination equals the source at the pause, and the report adds up`, async () => {
      const ks = await createKernel();
      const kd = await createKernel();
      const pages = 2048;
      const src = new WasmGuestMemory(ks, pages);
      const r = rng(1);
      const init = src.bytes();
      for (let p = 0; p < pages; p++) if (p % 3 !== 0) for (let j = 0; j < 64; j++) init[p * PAGE_SIZE + randInt(r, PAGE_SIZE)] = randInt(r, 256);
      const dst = new WasmGuestMemory(kd, pages);
      const [ta, tb] = createInProcessPair();
      const guest = startGuest(src, 7);
      let atPause: Uint8Array | null = null;
      let resumed = false;
      const source = new MigrationSource({
        kernel: ks, memory: src, dirtyLog: src.dirtyLog(), transport: ta, mode,
        maxBandwidth: 200e6, downtimeLimitMs: 5, maxRounds: 6, autoProbeMs: 20,
        onPause: () => { guest.stop(); atPause = src.bytes().slice(); },
        onResume: () => { resumed = true; },
        deviceState: () => new Uint8Array([1, 2, 3]),
      });
      const destination = new MigrationDestination({ kernel: kd, memory: dst, transport: tb });
      // post-copy: the destination guest touches pages as soon as it runs
      const touched: Promise<void>[] = [];
      const recv = destination.receive();
      const poll = setInterval(() => {
        if (destination.running && touched.length === 0) for (let p = 0; p < pages; p += 97) touched.push(destination.ensurePage(p));
      }, 0);
      const [report, result] = await Promise.all([source.migrate(), recv]);
      clearInterval(poll);
      await Promise.all(touched);
      expect(resumed).toBe(false);
      expect(report.status).toBe("completed");
      expect(result.committed).toBe(true);
      expect(Array.from(result.deviceState)).toEqual([1, 2, 3]);
      expect(Buffer.compare(dst.bytes(), atPause!)).toBe(0);
      const sent = report.rounds.reduce((s, row) => s + row.sent, 0);
      expect(report.ram["pages-sent"]).toBe(sent);
      const ram = report.ram;
      expect(ram.duplicate + ram.normal + ram["xbzrle-pages"] + ram["rle-pages"] + ram["dedup-pages"]).toBe(sent);
      const sum = (k: "xbzrle" | "rle" | "dedup" | "raw") => report.rounds.reduce((s, row) => s + row[k], 0);
      expect([sum("xbzrle"), sum("rle"), sum("dedup"), sum("raw")]).toEqual([ram["xbzrle-pages"], ram["rle-pages"], ram["dedup-pages"], ram.normal]);
      expect(report.rounds.reduce((s, row) => s + row.zero, 0)).toBe(report.ram.duplicate);
      expect(report.ram.transferred).toBe(ta.bytesSent);
      expect(report.ram.transferred).toBeGreaterThan(report.ram.normal * PAGE_SIZE);
      if (mode === "precopy" || mode === "hybrid") expect(report.rounds.length).toBeGreaterThan(1);
      if (mode === "postcopy" || mode === "hybrid") expect(report.rounds.at(-1)!.phase).toBe("postcopy");
      if (mode === "stop-and-copy") expect(report.rounds.length).toBe(1);
      if (mode === "auto") expect(report.decisions[0].kind).toBe("auto");
      src.dispose();
      dst.dispose();
    });
  }
});

describe("every policy end to end", () => {
  const selections = listPolicies("selection").map((p) => p.name);
  const terminations = listPolicies("termination").map((p) => p.name);
  const nonConvergence = listPolicies("non-convergence").map((p) => p.name);
  for (const selection of selections) {
    it(`selection ${selection}: the destination equals the source at the pause`, async () => {
      for (const [i, termination] of terminations.entries()) {
        const k = await createKernel();
        const pages = 1500;
        const src = new WasmGuestMemory(k, pages);
        const dst = new WasmGuestMemory(k, pages);
        const guest = startGuest(src, 100 + i);
        let atPause: Uint8Array | null = null;
        const [ta, tb] = createInProcessPair();
        const source = new MigrationSource({
          kernel: k, memory: src, dirtyLog: src.dirtyLog(), transport: ta, maxRounds: 8, downtimeLimitMs: 2,
          policy: { selection, termination, nonConvergence: nonConvergence[i % nonConvergence.length] },
          onPause: () => { guest.stop(); atPause = src.bytes().slice(); },
        });
        const destination = new MigrationDestination({ kernel: k, memory: dst, transport: tb });
        const [report] = await Promise.all([source.migrate(), destination.receive()]);
        expect(report.status).toBe("completed");
        expect(Buffer.compare(dst.bytes(), atPause!), `${selection} + ${termination}`).toBe(0);
        expect(report.decisions[0].decision).toContain(selection);
        src.dispose();
        dst.dispose();
      }
    });
  }
});

describe("keyed frames", () => {
  it("a migration with a pre-shared key completes on shared kernels (HMAC over shared memory)", async () => {
    const { frameKey } = await import("../../src/wire/hmac.js");
    const key = frameKey(new TextEncoder().encode("a-pre-shared-key-of-enough-bytes"));
    const ks = await createKernel({ shared: true });
    const kd = await createKernel({ shared: true });
    const src = new WasmGuestMemory(ks, 300);
    src.bytes().fill(7, 0, 100 * PAGE_SIZE);
    const dst = new WasmGuestMemory(kd, 300);
    const [ta, tb] = createInProcessPair();
    const [report] = await Promise.all([
      new MigrationSource({ kernel: ks, memory: src, dirtyLog: src.dirtyLog(), transport: ta, key }).migrate(),
      new MigrationDestination({ kernel: kd, memory: dst, transport: tb, key }).receive(),
    ]);
    expect(report.status).toBe("completed");
    expect(Buffer.compare(dst.bytes(), src.bytes())).toBe(0);
  });
});

describe("xen-to-skip sees the live log", () => {
  it("pages dirtied again since the harvest are skipped in that round (and still arrive)", async () => {
    const k = await createKernel();
    const pages = 512;
    const src = new WasmGuestMemory(k, pages);
    const dst = new WasmGuestMemory(k, pages);
    const log = src.dirtyLog();
    let harvests = 0;
    // the guest rewrites pages 0..63 just before and right after every harvest: they are
    // candidates of the next round and already re-dirtied when it starts
    const touch = () => { for (let p = 0; p < 64; p++) src.write(p * PAGE_SIZE, new Uint8Array([harvests, p])); };
    const dirtyLog = { ...log, harvest: (into: Parameters<typeof log.harvest>[0]) => { if (++harvests < 4) touch(); log.harvest(into); if (harvests < 4) touch(); } };
    const [ta, tb] = createInProcessPair();
    const [report] = await Promise.all([
      new MigrationSource({ kernel: k, memory: src, dirtyLog, transport: ta, maxRounds: 4, downtimeLimitMs: 0, policy: { selection: "xen-to-skip", termination: "max-rounds" } }).migrate(),
      new MigrationDestination({ kernel: k, memory: dst, transport: tb }).receive(),
    ]);
    expect(Buffer.compare(dst.bytes(), src.bytes())).toBe(0);
    const middle = report.rounds.filter((r) => r.phase === "precopy" && r.round > 0);
    expect(middle.length).toBeGreaterThan(0);
    for (const r of middle) expect(r.deferred, JSON.stringify(report.rounds)).toBeGreaterThan(0);
  });
});
