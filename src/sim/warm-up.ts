// The guest's life before the migration, for policies that count modifications since the
// VM started (history-threshold: "updation counts how many times each page was modified
// since the VM started", Bhatia & Singh).
//
//   VM start: RAM is all zero ──► boot ──► the workload's initial memory (TraceWorkload:
//   snapshot 0)  ═► sync 0: every page that is not all zero was modified at least once
//   ──► run the workload one sync period at a time ═► syncs 1..S: each period's dirty set
//   ──► the migration starts with this history (MigrationSourceOptions.history)
//
// Sync 0 is a lower bound (a page the boot wrote several times, or wrote back to zero,
// counts once or not at all), but it is what the memory shows: without it a replay that
// starts from a booted guest treats the guest's whole memory as never modified.
//
// The default warm-up is 255 sync periods (255 s at the 1 s period): the page history's
// dirty count is one byte and saturates at 255, so this is the longest history every
// count holds exactly. A VM that has run for hours has at least this much history; a
// shorter default would let the length of an arbitrary warm-up decide what the policy
// does (with a short history T = Σ updation / n stays below 1 and no dirtied page can
// pass `updation < T`).
import { DirtyBitmap } from "../kernel/dirty-bitmap.js";
import type { Kernel } from "../kernel/kernel.js";
import { DEFAULT_MIN_ROUND_MS } from "../engine/precopy-rounds.js";
import { PageHistory } from "../policy/page-history.js";
import { listPolicies } from "../policy/registry.js";
import type { WasmGuestMemory } from "../memory/wasm-guest-memory.js";
import type { Workload } from "../workload/workload.js";
import type { GuestAccess } from "./destination-guest.js";

/** Syncs of the default warm-up: the page history's dirty count saturates at 255. */
export const DEFAULT_WARMUP_SYNCS = 255;

/** The sync period of a warm-up, seconds: the engine's minimum round (QEMU's 1 s when 0 or absent). */
export function warmupPeriodSeconds(minRoundMs?: number): number {
  return (minRoundMs || DEFAULT_MIN_ROUND_MS) / 1000;
}

/**
 * The warm-up a scenario runs when none is given: 255 sync periods for a selection policy
 * that counts modifications since the VM started, else none.
 */
export function defaultWarmupSeconds(selection: string | undefined, minRoundMs?: number): number {
  const info = listPolicies("selection").find((p) => p.name === selection);
  return info?.historySinceStart ? DEFAULT_WARMUP_SYNCS * warmupPeriodSeconds(minRoundMs) : 0;
}

/** What a warm-up put in the history. */
export interface WarmUp {
  history: PageHistory;
  seconds: number;
  /** Syncs recorded, the boot's included. */
  syncs: number;
  /** Pages not all zero at the start: modified at least once since the VM started (sync 0). */
  bootPages: number;
}

/**
 * Records the boot (sync 0) and runs the guest for `seconds`, one sync period at a time,
 * recording each period's dirty set in a new page history on `k`.
 */
export function warmUp(
  k: Kernel,
  mem: WasmGuestMemory,
  guest: GuestAccess,
  workload: Workload,
  seconds: number,
  minRoundMs?: number,
): WarmUp {
  const history = new PageHistory(k, mem.pageCount);
  const bits = new DirtyBitmap(k, mem.pageCount);
  try {
    const zero = new DirtyBitmap(k, mem.pageCount);
    k.zeroPages(mem.bytes(), mem.pageCount, zero);
    bits.setRange(0, mem.pageCount);
    const bootPages = bits.andNot(zero).count();
    zero.dispose();
    history.recordRound(bits);
    let syncs = 1;
    const period = warmupPeriodSeconds(minRoundMs);
    const log = mem.dirtyLog();
    log.start();
    for (let t = 0; t < seconds - 1e-9; t += period) {
      workload.run(Math.min(period, seconds - t), guest);
      log.harvest(bits);
      history.recordRound(bits);
      syncs++;
    }
    return { history, seconds, syncs, bootPages };
  } catch (e) {
    history.dispose();
    throw e;
  } finally {
    bits.dispose();
  }
}
