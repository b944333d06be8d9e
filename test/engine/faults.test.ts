import { describe, expect, it } from "vitest";
import { PAGE_SIZE } from "../../src/index.js";
import { MigrationAbortedError, type MigrationMode } from "../../src/engine/source.js";
import { FrameType } from "../../src/wire/frame.js";
import type { Fault } from "../support/faulty-transport.js";
import { createMigrationPair } from "../support/migration-pair.js";
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
  const pages = 600;
  // a few writes between rounds so pre-copy takes more than one round
  let round = 0;
  const pair = await createMigrationPair({
    pages, mode, trackCommit: true, source: { maxRounds: 3, downtimeLimitMs: 0 },
    fault: { side: stage.side, fault, when: (type) => type === stage.type },
    dirtyLog: (log) => ({ ...log, harvest: (into) => { if (!pair.paused && ++round > 0) pair.src.write((pages - 1) * PAGE_SIZE, new Uint8Array([round])); return log.harvest(into); } }),
    // post-copy: the destination guest faults on the last page as soon as it runs
    onActivate: (d) => { if (d.running) void d.ensurePage(pages - 1).catch(() => {}); },
  });
  const r = rng(5);
  const b = pair.src.bytes();
  for (let i = 0; i < 3000; i++) b[randInt(r, b.length)] = randInt(r, 256);
  const [s, d] = await pair.settle();
  const src = pair.src.bytes();
  return { s, d, paused: pair.paused, resumed: pair.resumed, committed: pair.committed, discarded: pair.discarded, fired: pair.faultFired, srcChanged: Buffer.compare(pair.atPause ?? src, src) !== 0 };
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
    const pair = await createMigrationPair({
      pages: 64, kernels: "one", mode: "stop-and-copy", dirtyLog: false, key: "key-one-key-one-key-one", destinationKey: "key-two-key-two-key-two",
    });
    const [s, d] = await pair.settle();
    expect(s.status).toBe("rejected");
    expect(d.status).toBe("rejected");
    expect((d as PromiseRejectedResult).reason.code).toBe("FRAME_HMAC");
  });
});
