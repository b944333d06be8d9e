import { describe, expect, it } from "vitest";
import { createKernel, PAGE_SIZE } from "../../src/index.js";
import { MigrationDestination } from "../../src/engine/destination.js";
import { MigrationAbortedError, MigrationSource, type MigrationMode } from "../../src/engine/source.js";
import { WasmGuestMemory } from "../../src/memory/wasm-guest-memory.js";
import { FrameType } from "../../src/wire/frame.js";
import { frameKey } from "../../src/wire/hmac.js";
import { createInProcessPair } from "../../src/transport/in-process.js";
import { faulty, type Fault } from "../support/faulty-transport.js";
import { rng, randInt } from "../support/random.js";

const T = FrameType;
/** Where a fault strikes: the direction and the frame that carries it. */
const STAGES: Array<{ name: string; side: "source" | "destination"; type: number; modes?: MigrationMode[] }> = [
  { name: "handshake (HELLO)", side: "source", type: T.HELLO },
  { name: "handshake (WELCOME)", side: "destination", type: T.WELCOME },
  { name: "pre-copy pages", side: "source", type: T.PAGES, modes: ["precopy", "hybrid"] },
  { name: "stop-and-copy (DEVICE_STATE)", side: "source", type: T.DEVICE_STATE },
  { name: "post-copy page request", side: "destination", type: T.PAGE_REQUEST, modes: ["postcopy", "hybrid"] },
  { name: "commit (COMPLETE)", side: "source", type: T.COMPLETE },
  { name: "commit (COMMIT_ACK)", side: "destination", type: T.COMMIT_ACK },
];
const FAULTS: Fault[] = ["drop", "flip", "truncate", "replay", "kill"];
const MODES: MigrationMode[] = ["precopy", "stop-and-copy", "postcopy", "hybrid"];

async function run(mode: MigrationMode, stage: (typeof STAGES)[number], fault: Fault) {
  const ks = await createKernel();
  const kd = await createKernel();
  const pages = 600;
  const src = new WasmGuestMemory(ks, pages);
  const r = rng(5);
  const b = src.bytes();
  for (let i = 0; i < 3000; i++) b[randInt(r, b.length)] = randInt(r, 256);
  const before = src.bytes().slice();
  const dst = new WasmGuestMemory(kd, pages);
  let committed = false;
  let discarded = false;
  const dstMem = Object.assign(dst, { commit: async () => { committed = true; }, discard: async () => { discarded = true; } });
  const [ta, tb] = createInProcessPair();
  const fa = stage.side === "source" ? faulty(ta, fault, (type) => type === stage.type) : ta;
  const fb = stage.side === "destination" ? faulty(tb, fault, (type) => type === stage.type) : tb;
  let paused = false;
  let resumed = false;
  // a few writes between rounds so pre-copy takes more than one round
  let round = 0;
  const log = src.dirtyLog();
  const dirtyLog = { ...log, harvest: (into: Parameters<typeof log.harvest>[0]) => { if (!paused && ++round > 0) src.write((pages - 1) * PAGE_SIZE, new Uint8Array([round])); return log.harvest(into); } };
  const before2 = () => src.bytes().slice();
  let atPause: Uint8Array | null = null;
  const source = new MigrationSource({
    kernel: ks, memory: src, dirtyLog, transport: fa, mode, maxRounds: 3, downtimeLimitMs: 0,
    onPause: () => { paused = true; atPause = before2(); },
    onResume: () => { resumed = true; },
  });
  // post-copy: the destination guest faults on the last page as soon as it runs
  const destination: MigrationDestination = new MigrationDestination({
    kernel: kd, memory: dstMem, transport: fb,
    onActivate: () => { if (destination.running) void destination.ensurePage(pages - 1).catch(() => {}); },
  });
  const [s, d] = await Promise.allSettled([source.migrate(), destination.receive()]);
  return { s, d, paused, resumed, committed, discarded, fired: (fa as { fired?: boolean }).fired ?? (fb as { fired?: boolean }).fired, srcChanged: Buffer.compare(atPause ?? src.bytes(), src.bytes()) !== 0, before };
}

describe("faults abort the migration and keep the source primary", () => {
  for (const mode of MODES) {
    for (const stage of STAGES) {
      if (stage.modes && !stage.modes.includes(mode)) continue;
      for (const fault of FAULTS) {
        it(`${mode} / ${stage.name} / ${fault}`, async () => {
          const res = await run(mode, stage, fault);
          expect(res.fired, "the fault was injected").toBe(true);
          if (stage.type === T.COMMIT_ACK && fault === "replay") {
            // the first acknowledgement is the commit point: a copy after it changes nothing
            expect(res.s.status).toBe("fulfilled");
            expect(res.d.status).toBe("fulfilled");
            expect(res.committed).toBe(true);
            return;
          }
          expect(res.s.status).toBe("rejected");
          const err = (res.s as PromiseRejectedResult).reason;
          expect(err).toBeInstanceOf(MigrationAbortedError);
          expect((err as MigrationAbortedError).report.status).toBe("aborted");
          expect(res.d.status).toBe("rejected");
          expect(res.committed).toBe(false);
          expect(res.discarded).toBe(true);
          expect(res.resumed).toBe(res.paused);
          expect(res.srcChanged).toBe(false);
        });
      }
    }
  }

  it("a wrong key fails the handshake on both sides", async () => {
    const ks = await createKernel();
    const mem = new WasmGuestMemory(ks, 64);
    const dst = new WasmGuestMemory(ks, 64);
    const [ta, tb] = createInProcessPair();
    const source = new MigrationSource({ kernel: ks, memory: mem, transport: ta, mode: "stop-and-copy", key: frameKey(new TextEncoder().encode("key-one-key-one-key-one")) });
    const destination = new MigrationDestination({ kernel: ks, memory: dst, transport: tb, key: frameKey(new TextEncoder().encode("key-two-key-two-key-two")) });
    const [s, d] = await Promise.allSettled([source.migrate(), destination.receive()]);
    expect(s.status).toBe("rejected");
    expect(d.status).toBe("rejected");
    expect((d as PromiseRejectedResult).reason.code).toBe("FRAME_HMAC");
  });
});
