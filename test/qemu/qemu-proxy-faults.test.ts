// The qemu-proxy's ownership rule under faults, with stand-in QEMUs (test/support/fake-qemu.ts):
// the link between the two proxies is cut after each frame in turn. Whatever the frame, the
// guest ends running on exactly one side: either the source QEMU got SHUT 0 (its migration
// completes) and the destination QEMU was told `cont` with the source's memory, or the source
// QEMU's return path failed (it resumes its guest) and the destination never ran.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { proxyQemuDestination } from "../../src/qemu/proxy-destination.js";
import { proxyQemuSource } from "../../src/qemu/proxy-source.js";
import { fakeDestinationQemu, fakeSourceQemu } from "../support/fake-qemu.js";
import { FrameProxy } from "../support/frame-proxy.js";

const dir = mkdtempSync(join(tmpdir(), "pw-qproxy-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const timeouts = { handshake: 5, frame: 5, commit: 5, activation: 5, reconnectWindow: 3 };
let runs = 0;

async function migrate(cutAfterFrame?: number, seed = 3, channels = 0, noTail = false) {
  const id = runs++;
  const dest = await fakeDestinationQemu(join(dir, `d${id}.sock`), join(dir, `d${id}.qmp`));
  let dstPort!: (p: number) => void;
  const dstListening = new Promise<number>((r) => (dstPort = r));
  const dst = proxyQemuDestination({
    listen: { host: "127.0.0.1", port: 0 },
    incoming: { path: dest.path },
    qmp: dest.qmpPath,
    timeouts,
    channels: channels ? { count: channels, tcp: { host: "127.0.0.1" } } : undefined,
    onListening: dstPort,
  });
  dst.catch(() => {});
  const relay = await FrameProxy.start(await dstListening);
  if (cutAfterFrame !== undefined) relay.after({ index: cutAfterFrame }, () => relay.cutConnections()).catch(() => {});
  const srcPath = join(dir, `s${id}.sock`);
  let srcReady!: () => void;
  const srcListening = new Promise<void>((r) => (srcReady = r));
  const src = proxyQemuSource({
    listen: { path: srcPath },
    to: { host: "127.0.0.1", port: relay.port },
    timeouts,
    channels: channels ? { count: channels, tcp: { host: "127.0.0.1" } } : undefined,
    tailTimeoutMs: 1000,
    onListening: () => srcReady(),
  });
  src.catch(() => {});
  await srcListening;
  const qemu = await fakeSourceQemu(srcPath, { seed, rounds: 8, sectionDelayMs: 25, noTail });
  const [s, d] = await Promise.allSettled([src, dst]);
  await relay.close();
  await dest.close();
  return { qemu, dest, s, d, frames: relay.frames.length, sequence: relay.sequence() };
}

describe("qemu-proxy with stand-in QEMUs", () => {
  it("carries the stream: the destination QEMU gets the source's memory and runs, the source gets SHUT 0", async () => {
    const r = await migrate();
    expect(r.s.status, String((r.s as PromiseRejectedResult).reason)).toBe("fulfilled");
    expect(r.d.status, String((r.d as PromiseRejectedResult).reason)).toBe("fulfilled");
    expect(r.qemu.shut).toBe(0);
    expect(r.dest.state).toBe("running");
    expect(Buffer.from(r.dest.memory!).equals(Buffer.from(r.qemu.memory))).toBe(true);
    expect(r.sequence).toMatch(/PREAMBLE>/);
    if (r.s.status === "fulfilled") {
      // resent unchanged records never cross the link
      expect(r.s.value.stream.unchanged).toBeGreaterThan(0);
      expect(r.s.value.report.ram["pages-sent"]).toBeLessThan(r.s.value.stream.records);
    }
  });

  it("carries the stream over 2 data channels too", async () => {
    const r = await migrate(undefined, 5, 2);
    expect(r.d.status, String((r.d as PromiseRejectedResult).reason)).toBe("fulfilled");
    expect(r.s.status, String((r.s as PromiseRejectedResult).reason)).toBe("fulfilled");
    expect(r.d.status, String((r.d as PromiseRejectedResult).reason)).toBe("fulfilled");
    if (r.s.status === "fulfilled") expect(r.s.value.report.channels).toBe(2);
    expect(r.qemu.shut).toBe(0);
    expect(r.dest.state).toBe("running");
    expect(Buffer.from(r.dest.memory!).equals(Buffer.from(r.qemu.memory))).toBe(true);
  });

  it("a stream that stalls after QEMU stopped its guest: the source QEMU runs again, the destination never", async () => {
    const r = await migrate(undefined, 3, 0, true);
    expect(r.s.status).toBe("rejected");
    expect(String((r.s as PromiseRejectedResult).reason)).toMatch(/did not end within 1000 ms/);
    expect(r.qemu.shut).not.toBe(0);
    expect(r.dest.commands).not.toContain("cont");
  });

  it("a cut after any frame leaves the guest running on exactly one side", { timeout: 300_000 }, async () => {
    const clean = await migrate();
    expect(clean.qemu.shut).toBe(0);
    expect(clean.sequence.match(/ROUND_END>/g)?.length, clean.sequence).toBeGreaterThanOrEqual(4); // rounds apart: cuts fall between them
    const outcomes: string[] = [];
    for (let k = 0; k < clean.frames; k++) {
      const r = await migrate(k);
      const completed = r.qemu.shut === 0;
      const ran = r.dest.state === "running";
      outcomes.push(`${k}:${completed ? "moved" : "stayed"}`);
      expect(
        completed,
        `cut after frame ${k} (${r.sequence}): source SHUT ${r.qemu.shut}, destination ${r.dest.state}`,
      ).toBe(ran);
      if (ran) expect(Buffer.from(r.dest.memory!).equals(Buffer.from(r.qemu.memory))).toBe(true);
      else expect(r.dest.commands).not.toContain("cont");
    }
    // both outcomes happen: early cuts keep the guest at the source, late ones move it
    expect(outcomes.some((o) => o.endsWith("stayed"))).toBe(true);
    expect(outcomes.some((o) => o.endsWith("moved"))).toBe(true);
  });
});
