import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createKernel } from "../../src/index.js";
import { applyDirtyPageRecord } from "../../src/memory/recording.js";
import { openRecording, recordMemory, TraceWorkload } from "../../src/workload/trace.js";
import { WasmGuestMemory } from "../../src/memory/wasm-guest-memory.js";

describe("trace replay", () => {
  it("replays the idle recording at recorded guest time and rebuilds the recorded snapshots", async () => {
    const rec = openRecording("idle");
    const k = await createKernel();
    const mem = new WasmGuestMemory(k, rec.pageCount);
    const w = new TraceWorkload(rec);
    w.init(mem);
    const sha = () => createHash("sha256").update(mem.bytes()).digest("hex");
    expect(sha()).toBe(rec.meta.snapshot_sha256[0]);
    mem.dirty.clearAll();
    w.run(rec.deltas[0].runSeconds * 0.5, mem);
    expect(w.recordsApplied).toBe(0);
    w.run(rec.deltas[0].runSeconds * 0.5 + rec.deltas[1].runSeconds, mem);
    expect(w.recordsApplied).toBe(2);
    expect(sha()).toBe(rec.meta.snapshot_sha256[2]);
    expect(mem.dirty.count()).toBe(new Set([...rec.deltas[0].pages, ...rec.deltas[1].pages]).size);
    // one whole cycle later the same records come again
    w.run(w.cycleSeconds, mem);
    expect(w.recordsApplied).toBe(2 + rec.deltas.length);
    mem.dispose();
  });

  it("record writes DPG1 files that replay to the recorded snapshots", async () => {
    const k = await createKernel();
    const dir = mkdtempSync(join(tmpdir(), "pagewire-rec-"));
    const file = join(dir, "ram.img");
    const ram = new Uint8Array(64 * 4096);
    for (let i = 0; i < ram.length; i += 97) ram[i] = i & 0xff;
    writeFileSync(file, ram);
    let step = 0;
    const summary = await recordMemory({
      memoryFile: file,
      intervalMs: 1,
      count: 3,
      outDir: join(dir, "out"),
      kernel: k,
      sleep: async () => {
        step++;
        ram[step * 4096 * 5 + 7] ^= 0xff;
        ram[100] = step;
        writeFileSync(file, ram);
      },
    });
    expect(summary.intervals.map((i) => i.n_dirty)).toEqual([2, 2, 2]);
    const rec = openRecording(join(dir, "out"));
    const image = rec.base.slice();
    for (let i = 0; i < 3; i++) {
      applyDirtyPageRecord(image, rec.deltas[i]);
      expect(createHash("sha256").update(image).digest("hex")).toBe(rec.meta.snapshot_sha256[i + 1]);
    }
    expect(Buffer.compare(image, ram)).toBe(0);
  });
});

describe("record's timing", () => {
  it("snapshots follow a fixed timeline: a slow read does not stretch every later interval", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pagewire-rec-time-"));
    const file = join(dir, "ram.img");
    writeFileSync(file, new Uint8Array(64 * 4096));
    const k = await createKernel();
    const asked: number[] = [];
    const summary = await recordMemory({
      memoryFile: file,
      intervalMs: 50,
      count: 4,
      outDir: join(dir, "out"),
      kernel: k,
      // each wait runs 30 ms long (a slow read, a busy machine): the next wait is shorter for it
      sleep: async (ms) => {
        asked.push(ms);
        await new Promise((r) => setTimeout(r, ms + 30));
      },
    });
    rmSync(dir, { recursive: true, force: true });
    expect(asked[0]).toBeGreaterThan(40);
    for (const ms of asked.slice(1)) expect(ms).toBeLessThan(30);
    const last = summary.intervals.at(-1)!;
    // 4 intervals of 50 ms end near 200 ms plus one lateness, not 4 × 80 ms
    expect(last.t_s).toBeLessThan(0.29);
  });
});
