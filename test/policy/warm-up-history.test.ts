// The engine accepts a warm-up history: a PageHistory fed the dirty log's harvests before
// the migration, which history-threshold reads as updation since the log started.
import { describe, expect, it } from "vitest";
import { createKernel, DirtyBitmap, PageHistory, PagewireError, type Kernel } from "../../src/index.js";
import { MigrationDestination } from "../../src/engine/destination.js";
import { MigrationSource } from "../../src/engine/source.js";
import { WasmGuestMemory } from "../../src/memory/wasm-guest-memory.js";
import { createInProcessPair } from "../../src/transport/in-process.js";

const PAGES = 64;

async function migrate(k: Kernel, history?: PageHistory) {
  const src = new WasmGuestMemory(k, PAGES);
  const dst = new WasmGuestMemory(k, PAGES);
  for (let p = 0; p < PAGES; p++) src.bytes()[p * 4096] = p + 1;
  const [a, b] = createInProcessPair();
  const source = new MigrationSource({
    kernel: k,
    memory: src,
    dirtyLog: src.dirtyLog(),
    transport: a,
    maxRounds: 2,
    minRoundMs: 0,
    history,
    policy: { selection: "history-threshold", termination: "max-rounds" },
  });
  const destination = new MigrationDestination({ kernel: k, memory: dst, transport: b });
  const [rs, rd] = await Promise.allSettled([source.migrate(), destination.receive()]);
  const equal = Buffer.compare(src.bytes(), dst.bytes()) === 0;
  src.dispose();
  dst.dispose();
  return { rs, rd, equal };
}

describe("a warm-up history given to the engine", () => {
  it("history-threshold's first round sends only the pages unmodified during the warm-up", async () => {
    const k = await createKernel();
    const history = new PageHistory(k, PAGES);
    const warm = new DirtyBitmap(k, PAGES);
    warm.setRange(0, 10);
    for (let i = 0; i < 3; i++) history.recordRound(warm); // pages 0..9 dirty in 3 warm-up syncs
    const withWarmUp = await migrate(k, history);
    if (withWarmUp.rs.status === "rejected") throw withWarmUp.rs.reason;
    expect(withWarmUp.equal).toBe(true);
    expect(withWarmUp.rs.value.rounds[0]).toMatchObject({ sent: 54, deferred: 10 });
    expect(history.rounds).toBeGreaterThan(3); // the migration's syncs are recorded after the warm-up's
    const without = await migrate(k);
    if (without.rs.status === "rejected") throw without.rs.reason;
    expect(without.rs.value.rounds[0]).toMatchObject({ sent: PAGES, deferred: 0 });
    warm.dispose();
    history.dispose();
  });

  it("a history of another page count aborts the migration (cause BITMAP_MISMATCH)", async () => {
    const k = await createKernel();
    const history = new PageHistory(k, PAGES / 2);
    const r = await migrate(k, history);
    expect(r.rs.status).toBe("rejected");
    const e = (r.rs as PromiseRejectedResult).reason;
    expect(e).toBeInstanceOf(PagewireError);
    // the source aborts the migration, naming the cause
    expect((e as PagewireError).code).toBe("MIGRATION_ABORTED");
    expect(((e as Error).cause as PagewireError).code).toBe("BITMAP_MISMATCH");
    history.dispose();
  });
});
