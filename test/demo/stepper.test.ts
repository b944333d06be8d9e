// Step mode's gate and clock (demo/src/stepper.ts): a hold waits for advance(), and the
// clock the engine runs on stands still meanwhile, so held time never counts as round time
// or downtime.
import { describe, expect, it } from "vitest";
import { Stepper } from "../../demo/src/stepper.js";
import { PhaseLog } from "../../demo/src/phases.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("Stepper", () => {
  it("holds until advance(), with the clock standing still meanwhile", async () => {
    const changes: Array<string | null> = [];
    const s = new Stepper(() => changes.push(s.held));
    expect(s.advance()).toBe(false); // nothing held
    const before = s.clock.now();
    let released = false;
    const hold = s.hold("round").then(() => (released = true));
    expect(s.held).toBe("round");
    const atHold = s.clock.now();
    await sleep(400);
    expect(released).toBe(false);
    expect(s.clock.now()).toBe(atHold); // frozen
    expect(s.advance()).toBe(true);
    await hold;
    expect(released).toBe(true);
    expect(s.held).toBeNull();
    expect(changes).toEqual(["round", null]);
    // the clock goes on from where it stopped: the 400 ms held are not in it
    await sleep(30);
    const ran = s.clock.now() - before;
    expect(ran).toBeGreaterThanOrEqual(0.025);
    expect(ran).toBeLessThan(0.3);
  });

  it("a phase timeline on the stepper's clock leaves the held time out", async () => {
    const s = new Stepper();
    const log = new PhaseLog(() => s.clock.now() * 1000);
    log.enter("round", { round: 0, pending: 10 });
    await sleep(20);
    const hold = s.hold("round");
    await sleep(400);
    s.advance();
    await hold;
    await sleep(20);
    log.enter("pause");
    log.finish("done");
    const [round, pause] = log.spans;
    expect(round.endMs! - round.startMs).toBeGreaterThanOrEqual(35);
    expect(round.endMs! - round.startMs).toBeLessThan(300);
    expect(pause.startMs).toBe(round.endMs);
    expect(log.outcome).toBe("done");
    expect(log.roundsDone).toBe(1);
  });
});

describe("PhaseLog", () => {
  it("counts time from its first phase; ending a round leaves no phase running", () => {
    let now = 1000;
    const log = new PhaseLog(() => now);
    now = 1500; // kernel loading and boot before the first phase do not count
    expect(log.elapsedMs).toBe(0);
    log.enter("setup");
    now = 1510;
    log.enter("round", { round: 0, pending: 4096 });
    now = 1600;
    log.endCurrent();
    expect(log.roundsDone).toBe(1);
    now = 1610;
    log.enter("round", { round: 1, pending: 300 });
    expect(log.spans.map((s) => [s.kind, s.startMs, s.endMs])).toEqual([
      ["setup", 0, 10],
      ["round", 10, 100],
      ["round", 110, null],
    ]);
    now = 1650;
    log.finish("aborted");
    expect(log.current).toMatchObject({ round: 1, endMs: 150 });
    expect(log.roundsDone).toBe(2);
    expect(log.outcome).toBe("aborted");
  });
});
