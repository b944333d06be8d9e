// The qemu-proxy source's log against a model of the shadow: random ZERO / PAGE / XBZRLE
// records over a few pages, some rewriting what the page already holds. A record marks its
// page exactly when it changes the shadow (pages never written are compared with zeros
// without being read), and the shadow ends as the model says.
import { describe, expect, it } from "vitest";
import { encodeXbzrle } from "../../src/codec/xbzrle.js";
import { createKernel, DirtyBitmap, PAGE_SIZE, WasmGuestMemory } from "../../src/index.js";
import { QemuStreamLog } from "../../src/qemu/qemu-stream-log.js";
import { randInt, rng } from "../support/random.js";

describe("QemuStreamLog.record", () => {
  it("marks a page exactly when a record changes the shadow, for fresh and written pages alike", async () => {
    const k = await createKernel();
    const pages = 16;
    const memory = new WasmGuestMemory(k, pages);
    const log = new QemuStreamLog(k, memory, { pause() {}, resume() {}, batchWaitMs: 0, batchPages: 1 });
    log.start();
    const model = Array.from({ length: pages }, () => new Uint8Array(PAGE_SIZE));
    const r = rng(17);
    const out = new Uint8Array(PAGE_SIZE + 64);
    const bits = new DirtyBitmap(k, pages);
    let unchanged = 0;
    for (let step = 0; step < 400; step++) {
      const page = randInt(r, pages);
      const before = model[page].slice();
      const next = before.slice();
      const kind = randInt(r, 3);
      if (kind === 0) {
        const fill = randInt(r, 2) ? 0 : randInt(r, 256);
        next.fill(fill);
        log.record(page, "zero", fill);
      } else {
        // a new content: the same as now, all zeros, or a few bytes changed
        const how = randInt(r, 3);
        if (how === 1) next.fill(0);
        if (how === 2) for (let i = 0; i < 8; i++) next[randInt(r, PAGE_SIZE)] = randInt(r, 256);
        if (kind === 1) log.record(page, "page", next.slice());
        else {
          const n = encodeXbzrle(k, before, next, out);
          expect(n).toBeGreaterThanOrEqual(0);
          log.record(page, "xbzrle", out.slice(0, n));
        }
      }
      const changed = Buffer.compare(before, next) !== 0;
      if (!changed) unchanged++;
      model[page] = next;
      if (changed) {
        await log.harvest(bits);
        expect(bits.collect()).toEqual(Uint32Array.from([page]));
      }
    }
    expect(log.counts.unchanged).toBe(unchanged);
    expect(unchanged).toBeGreaterThan(50); // rewrites of the same content were exercised
    for (let p = 0; p < pages; p++) expect(Buffer.compare(memory.pageView(p), model[p])).toBe(0);
    log.dispose();
    bits.dispose();
    memory.dispose();
  });
});

describe("QemuStreamLog backpressure", () => {
  it("pauses QEMU at the high-water mark until a harvest; released while its guest is stopped, for good at completion", async () => {
    const k = await createKernel();
    const pages = 64;
    const memory = new WasmGuestMemory(k, pages);
    const calls: string[] = [];
    const log = new QemuStreamLog(k, memory, {
      pause: () => calls.push("pause"),
      resume: () => calls.push("resume"),
      highWaterPages: 4,
      batchWaitMs: 0,
      batchPages: 1,
    });
    log.start();
    const page = (v: number) => new Uint8Array(PAGE_SIZE).fill(v);
    for (let p = 0; p < 4; p++) log.record(p, "page", page(1));
    expect(calls).toEqual(["pause"]);
    const bits = new DirtyBitmap(k, pages);
    await log.harvest(bits);
    expect(bits.count()).toBe(4);
    expect(calls).toEqual(["pause", "resume"]);
    for (let p = 4; p < 8; p++) log.record(p, "page", page(2));
    expect(calls).toEqual(["pause", "resume", "pause"]);
    // QEMU stopped its guest (QMP STOP): resumed at once, and held back no more
    log.release();
    expect(calls).toEqual(["pause", "resume", "pause", "resume"]);
    for (let p = 8; p < 40; p++) log.record(p, "page", page(3));
    expect(calls).toHaveLength(4);
    expect(log.pending).toBe(36);
    expect(log.completing).toBe(false); // releasing is not QEMU's completion record: rounds go on
    await log.harvest(bits);
    expect(bits.count()).toBe(36);
    // the guest runs again (its user had paused it): held back at the mark as before
    log.holdAgain();
    for (let p = 40; p < 44; p++) log.record(p, "page", page(4));
    expect(calls).toEqual(["pause", "resume", "pause", "resume", "pause"]);
    await log.harvest(bits);
    // once QEMU's completion record came, nothing holds it back again
    log.completion();
    log.holdAgain();
    for (let p = 44; p < 60; p++) log.record(p, "page", page(5));
    expect(calls).toEqual(["pause", "resume", "pause", "resume", "pause", "resume"]);
    log.dispose();
    bits.dispose();
    memory.dispose();
  });
});
