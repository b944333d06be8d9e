// Source in this process with a Worker guest writing shared memory for the whole
// migration; destination in another process (`pagewire receive`) over TCP on 127.0.0.1.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { createKernel, PAGE_SIZE } from "../../src/index.js";
import { MigrationAbortedError, MigrationSource, type MigrationMode } from "../../src/engine/source.js";
import { WasmGuestMemory } from "../../src/memory/wasm-guest-memory.js";
import { connectTcp } from "../../src/transport/tcp.js";
import { rng, randInt } from "../support/random.js";
import { startWorkerGuest } from "../support/worker-guest.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "pagewire-tcp-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Starts `pagewire receive` on a free port; resolves with the port once it listens. */
function startReceiver(out: string, extra: string[] = []): Promise<{ child: ChildProcess; port: number; done: Promise<{ code: number | null; stdout: string; stderr: string }> }> {
  const child = spawn(process.execPath, [join(root, "dist/cli/main.js"), "receive", "--listen", "127.0.0.1:0", "--out", out, "--insecure", "--json", ...extra], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.on("exit", (code) => resolve({ code, stdout, stderr })));
  return new Promise((resolve, reject) => {
    child.stderr!.on("data", (d) => {
      stderr += d;
      const m = /listening on [^:]+:(\d+)/.exec(stderr);
      if (m) resolve({ child, port: Number(m[1]), done });
    });
    child.on("exit", (code) => reject(new Error(`receiver exited early (${code}): ${stderr}`)));
  });
}

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
      const rx = await startReceiver(out);
      const guest = startWorkerGuest(mem, { seed: 3 });
      while (guest.writes < 200) await new Promise((r) => setTimeout(r, 5)); // the guest is running before the migration starts
      let atPause: Uint8Array | null = null;
      const transport = await connectTcp("127.0.0.1", rx.port);
      const source = new MigrationSource({
        kernel: k, memory: mem, dirtyLog: mem.dirtyLog(), transport, mode, maxBandwidth: 400e6, downtimeLimitMs: 20, maxRounds: 8, autoProbeMs: 60,
        onPause: () => { guest.pause(); atPause = mem.bytes().slice(); },
      });
      const report = await source.migrate();
      const result = await rx.done;
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
      expect(ram.duplicate + ram.normal + ram["xbzrle-pages"] + ram["rle-pages"] + ram["dedup-pages"]).toBe(sent);
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
    const rx = await startReceiver(out);
    let resumed = false;
    let paused = false;
    const transport = await connectTcp("127.0.0.1", rx.port);
    let rounds = 0;
    const log = mem.dirtyLog();
    const source = new MigrationSource({
      kernel: k, memory: mem, transport, mode: "precopy", maxBandwidth: 20e6, maxRounds: 50, downtimeLimitMs: 0,
      dirtyLog: { ...log, harvest: (into) => { if (++rounds === 1) rx.child.kill("SIGKILL"); mem.dirty.set(rounds % pages); return log.harvest(into); } },
      onPause: () => { paused = true; },
      onResume: () => { resumed = true; },
    });
    const err = await source.migrate().then(() => null, (e) => e);
    expect(err).toBeInstanceOf(MigrationAbortedError);
    expect(resumed).toBe(paused);
    expect(Buffer.compare(mem.bytes(), before)).toBe(0);
    await rx.done;
    expect(existsSync(out)).toBe(false);
    mem.dispose();
  });
});
