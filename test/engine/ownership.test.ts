// The fault matrix: for every mode, a small migration whose link is cut after each frame
// index (frames both ways counted together), with and without reconnection. Every case
// must end in an allowed outcome (test/support/ownership.ts): never both sides running,
// never the newest memory lost. Cases left in doubt are settled by resolve(), as an
// operator would, and checked again.
import { describe, expect, it } from "vitest";
import { createKernel, PAGE_SIZE } from "../../src/index.js";
import { MigrationDestination } from "../../src/engine/destination.js";
import { MigrationSource, type MigrationMode } from "../../src/engine/source.js";
import { MigrationInDoubtError } from "../../src/engine/ownership.js";
import { WasmGuestMemory } from "../../src/memory/wasm-guest-memory.js";
import { checkOutcome, cuttablePair, OwnershipLog, Switchboard, type Outcome } from "../support/ownership.js";
import { randInt, rng } from "../support/random.js";

const PAGES = 48;
const MARKER = 0xa5;
const TIMEOUTS = { handshake: 1, frame: 2, commit: 2, activation: 1, pageRequest: 0.5, reconnectWindow: 0.6 };

interface CaseResult {
  outcome: Outcome;
  /** Connections the source replaced after a loss. */
  recoveries: number;
  frames: number;
  source: PromiseSettledResult<unknown>;
  destination: PromiseSettledResult<unknown>;
}

async function runCase(
  mode: MigrationMode,
  cutAfter: number,
  reconnect: boolean,
  fault: "cut" | "flip" = "cut",
): Promise<CaseResult> {
  const ks = await createKernel();
  const kd = await createKernel();
  const src = new WasmGuestMemory(ks, PAGES);
  const r = rng(11);
  const b = src.bytes();
  for (let i = 0; i < 2000; i++) b[randInt(r, b.length)] = randInt(r, 256);
  const dst = new WasmGuestMemory(kd, PAGES);
  const log = new OwnershipLog();
  const dstMem = Object.assign(dst, { commit: log.commit, discard: log.discard });
  const link = cuttablePair(cutAfter, fault);
  const board = reconnect ? new Switchboard() : null;
  // the guest writes between pre-copy rounds, so pre-copy takes more than one round
  let atPause: Uint8Array | null = null;
  let round = 0;
  const dirty = src.dirtyLog();
  const dirtyLog = {
    ...dirty,
    harvest: (into: Parameters<typeof dirty.harvest>[0]) => {
      if (!atPause) src.write((++round % PAGES) * PAGE_SIZE, new Uint8Array([round]));
      return dirty.harvest(into);
    },
  };
  let destinationWrote = false;
  const source = new MigrationSource({
    kernel: ks,
    memory: src,
    dirtyLog,
    transport: link.source,
    mode,
    maxRounds: 3,
    downtimeLimitMs: 0,
    batchPages: 4,
    frameBytes: 8192,
    timeouts: TIMEOUTS,
    reconnect: board?.connect,
    onPause: () => {
      log.pause();
      atPause = src.bytes().slice();
    },
    onResume: log.resume,
  });
  const destination: MigrationDestination = new MigrationDestination({
    kernel: kd,
    memory: dstMem,
    transport: link.destination,
    accept: board?.accept,
    timeouts: TIMEOUTS,
    onActivate: () => {
      log.activate();
      // post-copy: the guest runs here at once, faults on page 0 and writes it
      if (destination.state === "postcopy") {
        void destination.ensurePage(0).then(
          () => {
            dst.write(0, new Uint8Array([MARKER]));
            destinationWrote = true;
          },
          () => {},
        );
      }
    },
  });
  const [s, d] = await Promise.allSettled([source.migrate(), destination.receive().finally(() => board?.close())]);
  const memory = () => {
    const expected = (atPause ?? src.bytes()).slice();
    if (destinationWrote) expected[0] = MARKER;
    return {
      sourceIntact: atPause === null || Buffer.compare(atPause, src.bytes()) === 0,
      destinationHasNewest: Buffer.compare(expected, dst.bytes()) === 0,
    };
  };
  let outcome = checkOutcome(log, memory());
  if (outcome === "c") {
    // in doubt: the operator settles it with what the source decided
    expect(
      d.status === "rejected" && (d as PromiseRejectedResult).reason,
      "the destination is in doubt",
    ).toBeInstanceOf(MigrationInDoubtError);
    const committed = source.state === "in-doubt";
    await destination.resolve(committed ? "commit" : "abort");
    if (committed) await source.resolve("stop");
    outcome = checkOutcome(log, memory());
    expect(outcome).not.toBe("c");
  }
  if (outcome === "a" && destination.state === "in-doubt") {
    await destination.resolve("abort");
    expect(log.destinationDiscarded).toBe(true);
  }
  if (outcome === "a")
    expect(log.destinationRunning || log.destinationCommitted, "a discarded destination committed").toBe(false);
  return { outcome, recoveries: source.report.recovery.count, frames: link.frames(), source: s, destination: d };
}

const MODES: MigrationMode[] = ["precopy", "stop-and-copy", "postcopy", "hybrid"];

describe("cutting the link after every frame keeps the guest (ownership invariant)", () => {
  for (const mode of MODES) {
    it(`${mode}: every cut, with reconnection, ends with one side running the newest memory`, async () => {
      const clean = await runCase(mode, Infinity, true);
      expect(clean.outcome).toBe("b");
      expect(clean.source.status).toBe("fulfilled");
      const seen: Record<Outcome, number> = { a: 0, b: 0, c: 0 };
      let recovered = 0;
      for (let cut = 0; cut <= clean.frames + 1; cut++) {
        const res = await runCase(mode, cut, true);
        seen[res.outcome]++;
        if (res.outcome === "b" && res.recoveries > 0) recovered++;
        expect(res.outcome, `cut after ${cut} frames`).not.toBe("c");
      }
      // early cuts abort, late ones commit
      expect(seen.a).toBeGreaterThan(0);
      expect(seen.b).toBeGreaterThan(0);
      // cuts after the decision (and in post-copy, after the switch) are repaired on a new connection
      expect(recovered).toBeGreaterThan(mode === "postcopy" || mode === "hybrid" ? 3 : 0);
    });

    it(`${mode}: a corrupted frame at every index, with reconnection, ends allowed`, async () => {
      const clean = await runCase(mode, Infinity, true);
      for (let at = 0; at < clean.frames; at++) {
        const res = await runCase(mode, at, true, "flip");
        expect(res.outcome, `frame ${at} corrupted`).not.toBe("c");
      }
    });
  }

  for (const mode of ["precopy", "stop-and-copy"] as const) {
    it(`${mode}: every cut without reconnection ends allowed; in-doubt cases settle by resolve()`, async () => {
      const clean = await runCase(mode, Infinity, false);
      let inDoubt = 0;
      for (let cut = 0; cut <= clean.frames + 1; cut++) {
        const res = await runCase(mode, cut, false);
        if (
          res.source.status === "rejected" &&
          (res.source as PromiseRejectedResult).reason instanceof MigrationInDoubtError
        )
          inDoubt++;
      }
      // a cut between COMMIT_ACK and ACTIVATED leaves the source in doubt
      expect(inDoubt).toBeGreaterThan(0);
    });
  }
});
