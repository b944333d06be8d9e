import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
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
