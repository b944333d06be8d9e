// Source in this process with a Worker guest writing shared memory for the whole
// migration; destination in another process (`pagewire receive`) over TCP on 127.0.0.1.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createKernel, PAGE_SIZE } from "../../src/index.js";
import { MigrationAbortedError, MigrationSource, type MigrationMode } from "../../src/engine/source.js";
import { WasmGuestMemory } from "../../src/memory/wasm-guest-memory.js";
import { connectTcp } from "../../src/transport/tcp.js";
import { rng, randInt } from "../support/random.js";
import { startReceiver } from "../support/receiver.js";
import { startWorkerGuest } from "../support/worker-guest.js";

const dir = mkdtempSync(join(tmpdir(), "pagewire-tcp-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function guestMemory(pages: number) {
  const k = await createKernel({ shared: true });
  const mem = new WasmGuestMemory(k, pages, { shared: true });
  const r = rng(9);
  const b = mem.bytes();
  for (let p = 0; p < pages; p++) {
    if (p % 4 === 0) continue; // zero pages
    if (p % 4 === 1) b.fill(0xcc, p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
    else for (let j = 0; j < 256; j++) b[p * PAGE_SIZE + randInt(r, PAGE_SIZE)] = randInt(r, 256);
  }
  return { k, mem };
}

describe("two processes over TCP with a live Worker guest", () => {
  for (const mode of ["precopy", "postcopy", "hybrid", "stop-and-copy", "auto"] as MigrationMode[]) {
    it(`${mode}: the received file equals the source at the pause; counts add up`, async () => {
      const pages = 8192; // 32 MiB
      const { k, mem } = await guestMemory(pages);
      const out = join(dir, `${mode}.img`);
      const rx = await startReceiver(["--out", out, "--insecure", "--json"]);
      // real time and a real socket: the guest is a Worker writing concurrently, its writes
      // seeded and bounded (see worker-guest.ts); it is running before the migration starts
      const guest = startWorkerGuest(mem, { seed: 3, maxWrites: 100_000, startWrites: 200 });
      await guest.running;
      let atPause: Uint8Array | null = null;
      const transport = await connectTcp("127.0.0.1", rx.port);
      const source = new MigrationSource({
        kernel: k,
        memory: mem,
        dirtyLog: mem.dirtyLog(),
        transport,
        mode,
        maxBandwidth: 400e6,
        downtimeLimitMs: 20,
        maxRounds: 8,
        autoProbeMs: 60,
        onPause: () => {
          guest.pause();
          atPause = mem.bytes().slice();
        },
      });
      const report = await source.migrate();
      const result = await rx.exited;
      await guest.exited;
      expect(result.code, result.stderr).toBe(0);
      expect(JSON.parse(result.stdout).committed).toBe(true);
      expect(guest.writes).toBeGreaterThanOrEqual(200);
      const received = readFileSync(out);
      expect(received.length).toBe(pages * PAGE_SIZE);
      expect(Buffer.compare(received, atPause!)).toBe(0);
      const ram = report.ram;
      const sent = report.rounds.reduce((s, r) => s + r.sent, 0);
      expect(ram["pages-sent"]).toBe(sent);
      expect(
        ram.duplicate + ram.normal + ram["xbzrle-pages"] + ram["rle-pages"] + ram["lz-pages"] + ram["dedup-pages"],
      ).toBe(sent);
      expect(ram.transferred).toBeGreaterThan(0);
      if (mode === "auto") expect(report.decisions.some((d) => d.kind === "auto")).toBe(true);
      mem.dispose();
    });
  }

  it("the destination process killed mid-migration: source aborted and resumed, memory untouched, no output file", async () => {
    const pages = 8192;
    const { k, mem } = await guestMemory(pages);
    const before = mem.bytes().slice();
    const out = join(dir, "killed.img");
    const rx = await startReceiver(["--out", out, "--insecure", "--json"]);
    let resumed = false;
    let paused = false;
    const transport = await connectTcp("127.0.0.1", rx.port);
    let rounds = 0;
    const log = mem.dirtyLog();
    const source = new MigrationSource({
      kernel: k,
      memory: mem,
      transport,
      mode: "precopy",
      maxBandwidth: 20e6,
      maxRounds: 50,
      downtimeLimitMs: 0,
      dirtyLog: {
        ...log,
        harvest: (into) => {
          if (++rounds === 1) rx.child.kill("SIGKILL");
          mem.dirty.set(rounds % pages);
          return log.harvest(into);
        },
      },
      onPause: () => {
        paused = true;
      },
      onResume: () => {
        resumed = true;
      },
    });
    const err = await source.migrate().then(
      () => null,
      (e) => e,
    );
    expect(err).toBeInstanceOf(MigrationAbortedError);
    expect(resumed).toBe(paused);
    expect(Buffer.compare(mem.bytes(), before)).toBe(0);
    await rx.exited;
    expect(existsSync(out)).toBe(false);
    mem.dispose();
  });
});
