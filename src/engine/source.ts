// The migration source: the stages of a migration, in order (wire/messages.ts has the
// frames; each stage's work lives in its own module).
//
//   handshake ──► pre-copy rounds ──► stop-and-copy ──► commit ──► activation
//   (handshake.ts) (precopy-rounds.ts)  onPause, final     COMPLETE{digest}   ACTIVATE
//     HELLO/         round 0: every page  harvest, the rest  ◄── COMMIT_ACK
//     WELCOME        round n: what the    (page-sender.ts),  (source-inbox.ts)
//                    selection policy     DEVICE_STATE
//                    picks of the dirty
//                    pages
//   post-copy / hybrid: after the pause, POSTCOPY_START{pending pages}; the destination
//   runs and requests missing pages (PAGE_REQUEST) which jump the queue, while the rest
//   are pushed in the background starting next to recent faults (postcopy-push.ts).
//
// Until COMMIT_ACK arrives the source is primary: any failure aborts (ABORT frame, best
// effort), calls onResume if the guest was paused, and leaves source memory untouched.
import { EncodePipeline, emptyCounts, type CodecOptions } from "../codec/encode-pipeline.js";
import { PagewireError } from "../errors.js";
import { DirtyBitmap } from "../kernel/dirty-bitmap.js";
import { PAGE_SIZE, type Kernel } from "../kernel/kernel.js";
import { loadKernel } from "../kernel/loader.js";
import type { DirtyLog, GuestMemory } from "../memory/guest-memory.js";
import { TokenBucket } from "../transport/rate-limit.js";
import type { Transport } from "../transport/transport.js";
import { realClock, withTimeout, type Clock } from "../util/clock.js";
import { yieldToEventLoop } from "../util/yield.js";
import type { FrameKey } from "../wire/frame.js";
import { Message, ProtocolError, type Feature } from "../wire/messages.js";
import { chooseMigrationPlan, measureWorkload, type MigrationPlan } from "./auto-mode.js";
import { Channel } from "./channel.js";
import { digestOfPageHashes, digestSeed, MemoryDigest } from "./digest.js";
import { ALL_FEATURES, offerHandshake } from "./handshake.js";
import { finishReport, roundRow } from "./metrics.js";
import { PageSender } from "./page-sender.js";
import { resolvePolicies, type PolicyChoice } from "./policies.js";
import { pushPostcopyPages } from "./postcopy-push.js";
import { runPrecopyRounds } from "./precopy-rounds.js";
import { MigrationReport } from "./report.js";
import { SourceInbox } from "./source-inbox.js";

export type MigrationMode = "precopy" | "postcopy" | "hybrid" | "stop-and-copy" | "auto";

export interface MigrationSourceOptions {
  memory: GuestMemory;
  /** Pages written since the last harvest; without one only stop-and-copy is possible. */
  dirtyLog?: DirtyLog;
  transport: Transport;
  /** The kernel the memory lives in (default: loadKernel()). */
  kernel?: Kernel;
  mode?: MigrationMode;
  codecs?: CodecOptions;
  /** Bytes per second; Infinity (default) for no limit. Change it with setMaxBandwidth. */
  maxBandwidth?: number;
  /** Downtime the stop condition aims for, ms (QEMU's downtime-limit, default 300). */
  downtimeLimitMs?: number;
  /** Pre-copy rounds before stopping anyway (default 30; hybrid: rounds before post-copy, default 3). */
  maxRounds?: number;
  /** Pauses the guest (stop-and-copy starts when it resolves). */
  onPause?: () => void | Promise<void>;
  /** Resumes the guest on the source after a failed migration. */
  onResume?: () => void | Promise<void>;
  /** Opaque device state captured while paused, sent before the commit. */
  deviceState?: () => Uint8Array | Promise<Uint8Array>;
  /**
   * Pre-copy policies, by name (see listPolicies()) or as instances: page selection
   * (default vanilla), termination (default qemu), non-convergence (default none, as QEMU
   * without auto-converge: iterate until termination or maxRounds).
   * `options` holds constructor options per policy name.
   */
  policy?: PolicyChoice;
  /** Called when the throttle policy slows the guest (QEMU auto-converge), with the CPU throttle in percent. */
  onThrottle?: (percent: number) => void | Promise<void>;
  /** Pre-shared key: every frame carries an HMAC-SHA256. */
  key?: FrameKey;
  clock?: Clock;
  /** Pages per encode batch (default 256). */
  batchPages?: number;
  /** Payload bytes per PAGES frame (default 1 MiB). */
  frameBytes?: number;
  /** Auto mode: how long to watch the guest before choosing, ms (default 200). */
  autoProbeMs?: number;
  /** Post-copy pre-paging window: pages after a fault pushed next (default 16). */
  prepagePages?: number;
}

/** A migration ended before the commit acknowledgement; the source stays primary. */
export class MigrationAbortedError extends PagewireError {
  constructor(readonly report: MigrationReport, cause: unknown) {
    const c = cause as { code?: string; message?: string };
    super("MIGRATION_ABORTED", `migration aborted: ${c?.code ?? "ERROR"}: ${c?.message ?? String(cause)}`, { cause });
  }
}

export class MigrationSource {
  readonly options: MigrationSourceOptions;
  readonly report = new MigrationReport();
  #bucket: TokenBucket;
  #clock: Clock;
  #ch: Channel | null = null;
  #inbox: SourceInbox | null = null;
  #paused = false;

  constructor(options: MigrationSourceOptions) {
    this.options = options;
    this.#clock = options.clock ?? realClock;
    this.#bucket = new TokenBucket(options.maxBandwidth ?? Infinity, { clock: this.#clock });
  }

  /** Changes the bandwidth limit, bytes per second, effective immediately. */
  setMaxBandwidth(bytesPerSecond: number): void {
    this.#bucket.setRate(bytesPerSecond);
  }

  /** Runs the migration. Resolves with the report after the commit; rejects with MigrationAbortedError otherwise. */
  async migrate(): Promise<MigrationReport> {
    const o = this.options;
    const r = this.report;
    const mem = o.memory;
    const clock = this.#clock;
    const start = clock.now();
    r.mode = o.mode ?? (o.dirtyLog ? "precopy" : "stop-and-copy");
    r.ram.total = mem.pageCount * PAGE_SIZE;
    let pipeline: EncodePipeline | null = null;
    let sender: PageSender | null = null;
    let pending: DirtyBitmap | null = null;
    try {
      const k = o.kernel ?? (await loadKernel());
      const ch = (this.#ch = new Channel(k, o.transport, o.key ?? null, this.#bucket));
      const plan = r.mode === "auto" ? await this.#planAuto(k) : null;

      // handshake: stages the destination did not accept are off
      const offered = ALL_FEATURES.filter((f) => this.#wants(f));
      const { features, nonce } = await offerHandshake(ch, { pageCount: mem.pageCount, mode: r.mode, features: offered });
      const on = (f: Feature) => features.includes(f);
      if ((r.mode === "postcopy" || r.mode === "hybrid") && !on("postcopy")) throw new ProtocolError("PROTOCOL_MISMATCH", "destination does not support post-copy");
      pipeline = new EncodePipeline(k, mem.pageCount, {
        ...plan?.codecs, ...o.codecs, zero: on("zero"), xbzrle: on("xbzrle"), rle: on("rle"), dedup: on("dedup"),
      }, o.batchPages);
      r.setupTime = (clock.now() - start) * 1000;
      const inbox = (this.#inbox = new SourceInbox(ch));
      inbox.start();
      sender = new PageSender({
        kernel: k, memory: mem, dirtyLog: o.dirtyLog, channel: ch, pipeline, report: r, clock,
        frameBytes: o.frameBytes ?? 1 << 20, checkRemote: () => inbox.throwIfFailed(),
      });

      // pre-copy
      pending = new DirtyBitmap(k, mem.pageCount);
      pending.setRange(0, mem.pageCount);
      let mode = r.mode;
      if ((mode === "precopy" || mode === "hybrid") && !o.dirtyLog) {
        throw new PagewireError("DIRTY_LOG_REQUIRED", `mode ${mode} needs a dirty log; use stop-and-copy for memory without one`);
      }
      if (mode === "precopy" || mode === "hybrid") {
        const toPostcopy = await this.#precopy(k, sender, pending, o.maxRounds ?? plan?.maxRounds ?? (mode === "hybrid" ? 3 : 30), plan);
        if (toPostcopy && on("postcopy")) mode = r.mode = "hybrid";
      } else if (mode === "postcopy" && o.dirtyLog) {
        o.dirtyLog.start();
      }

      // stop-and-copy: pause, final harvest
      const pausedAt = clock.now();
      await o.onPause?.();
      this.#paused = true;
      const postcopy = mode === "postcopy" || mode === "hybrid";
      // a hash-scan log's final scan already hashed the paused guest: the digest comes from it
      let scanned: { digest: string; seed: bigint } | null = null;
      if (o.dirtyLog && mode !== "stop-and-copy") {
        const last = new DirtyBitmap(k, mem.pageCount);
        await o.dirtyLog.harvest(last);
        pending.or(last);
        last.dispose();
        r.ram["dirty-sync-count"]++;
        const table = postcopy ? null : (o.dirtyLog.pageHashes?.() ?? null);
        if (table) scanned = { digest: digestOfPageHashes(k, table.table, table.seed), seed: table.seed };
        o.dirtyLog.stop();
      }
      let digestHex: string;
      let seedHex: string | undefined;
      const stopAndCopy = async () => {
        await sender!.sendRound(pending!, { round: r.rounds.length, phase: "stop-and-copy", dirtied: pending!.count(), deferred: 0 });
        await this.#sendDeviceState(ch);
      };
      if (scanned) {
        await stopAndCopy();
        digestHex = scanned.digest;
        seedHex = scanned.seed.toString(16);
      } else {
        const digest = new MemoryDigest(k, mem.pageCount, digestSeed(nonce));
        if (postcopy) {
          await this.#postcopy(k, ch, sender, inbox, pending, digest, () => (r.downtime = (clock.now() - pausedAt) * 1000));
        } else {
          await stopAndCopy();
          digest.updateFrom(mem);
        }
        digestHex = digest.digest();
        digest.dispose();
      }

      // commit: the source's acceptance of the acknowledgement is the commit point
      await ch.sendMessage(Message.COMPLETE, { digest: digestHex, pagesSent: r.ram["pages-sent"], ...(seedHex ? { seed: seedHex } : {}) });
      const ack = await inbox.ack;
      if (r.postcopy) {
        r.postcopy["fault-latency-p50-ms"] = ack.faultLatencyP50Ms ?? NaN;
        r.postcopy["fault-latency-p99-ms"] = ack.faultLatencyP99Ms ?? NaN;
      }
      if (ack.digest !== digestHex) throw new ProtocolError("DIGEST_MISMATCH", `destination acknowledged digest ${ack.digest}, source has ${digestHex}`);

      // activation: the destination closes after activating, or refuses with ABORT (then it
      // will not run, and the source may resume). Silence is taken as success.
      await ch.sendMessage(Message.ACTIVATE, undefined).catch(() => {});
      const word = await withTimeout(inbox.finalWord, 5, "timeout" as const, clock);
      if (word === "abort") throw inbox.error;
      const end = clock.now();
      if (!postcopy) r.downtime = (end - pausedAt) * 1000;
      r.totalTime = (end - start) * 1000;
      finishReport(r, ch.bytesSent, end - start, pipeline);
      o.transport.close();
      return r;
    } catch (err) {
      return this.#abort(err, start);
    } finally {
      pending?.dispose();
      pipeline?.dispose();
      sender?.dispose();
      this.#ch?.dispose();
    }
  }

  // ---- stages ------------------------------------------------------------------------------

  /** Auto mode: measures the guest, picks mode, selection and codecs, and reports why. */
  async #planAuto(k: Kernel): Promise<MigrationPlan> {
    const o = this.options;
    const m = await measureWorkload(k, o.memory, o.dirtyLog, this.#clock, o.autoProbeMs ?? 200);
    const plan = chooseMigrationPlan(m, !!o.dirtyLog, this.#bucket.rate, o.downtimeLimitMs ?? 300);
    this.report.mode = plan.mode;
    this.report.decisions.push({
      round: 0, kind: "auto", decision: `${plan.mode}, ${plan.selection} selection: ${plan.rule}`,
      inputs: {
        dirtyPagesPerSecond: Math.round(m.dirtyPagesPerSecond), workingSetPages: m.workingSetPages,
        zeroShare: Math.round(m.zeroShare * 1000) / 1000, duplicateShare: Math.round(m.duplicateShare * 1000) / 1000,
        probeSeconds: Math.round(m.probeSeconds * 1000) / 1000, bandwidthBytesPerSecond: this.#bucket.rate,
      },
    });
    return plan;
  }

  #wants(f: Feature): boolean {
    const c = this.options.codecs ?? {};
    switch (f) {
      case "zero": return c.zero !== false;
      case "xbzrle": return c.xbzrle !== false;
      case "rle": return c.rle !== false;
      case "dedup": return c.dedup !== false;
      default: return true;
    }
  }

  /** Pre-copy rounds over the wire; returns true when the non-convergence policy asked for post-copy. */
  async #precopy(k: Kernel, sender: PageSender, pending: DirtyBitmap, maxRounds: number, plan: MigrationPlan | null): Promise<boolean> {
    const o = this.options;
    const r = this.report;
    const { selection, termination, nonConvergence } = resolvePolicies(o.policy, plan?.selection);
    r.decisions.push({ round: 0, kind: "policies", decision: `${selection.name} / ${termination.name} / ${nonConvergence?.name ?? "none"}` });
    try {
      const outcome = await runPrecopyRounds({
        kernel: k, pageCount: o.memory.pageCount, dirtyLog: o.dirtyLog!, selection, termination, nonConvergence,
        clock: this.#clock, maxRounds, downtimeLimitMs: o.downtimeLimitMs ?? 300, pending, decisions: r.decisions,
        sendRound: ({ round, send, order, candidates, deferred }) =>
          sender.sendRound(send, { round, phase: "precopy", dirtied: candidates, deferred }, order),
        estimateBandwidth: (sent) => {
          if (!sent) return 0;
          const measured = Math.min(sent.seconds > 0 ? sent.bytes / sent.seconds : Infinity, this.#bucket.rate);
          return Number.isFinite(measured) ? measured : 0;
        },
        pagesSent: () => r.ram["pages-sent"],
        onSync: () => void r.ram["dirty-sync-count"]++,
        onThrottle: o.onThrottle,
      });
      r.ram["dirty-pages-rate"] = outcome.seconds > 0 ? outcome.dirtiedPages / outcome.seconds : 0;
      return outcome.toPostcopy;
    } finally {
      selection.dispose();
    }
  }

  async #sendDeviceState(ch: Channel): Promise<void> {
    const state = (await this.options.deviceState?.()) ?? new Uint8Array(0);
    await ch.sendMessage(Message.DEVICE_STATE, state);
  }

  async #postcopy(k: Kernel, ch: Channel, sender: PageSender, inbox: SourceInbox, pending: DirtyBitmap, digest: MemoryDigest, switched: () => void): Promise<void> {
    const o = this.options;
    const r = this.report;
    const mem = o.memory;
    // the destination needs to know which of its pages are stale or missing
    await this.#sendDeviceState(ch);
    const bits = new Uint8Array(k.memory.buffer, pending.region.ptr, Math.ceil(mem.pageCount / 8)).slice();
    await ch.sendMessage(Message.POSTCOPY_START, bits);
    switched();
    digest.updateFrom(mem);
    const t0 = this.#clock.now();
    const counts = emptyCounts();
    const total = pending.count();
    const bytesBefore = ch.bytesSent;
    // every pending page is missing at the destination: none may be skipped as unchanged
    sender.begin(r.rounds.length, true, true);
    const { requested, pushed } = await pushPostcopyPages({
      pending,
      prepagePages: o.prepagePages ?? 16,
      nextRequest: () => inbox.nextRequest(),
      sendPages: async (pages) => {
        await sender.sendBatch(pages, counts);
        await sender.flush();
      },
      checkRemote: () => inbox.throwIfFailed(),
      yieldToRequests: yieldToEventLoop,
    });
    await ch.sendMessage(Message.POSTCOPY_END, undefined);
    r.rounds.push(roundRow({ round: r.rounds.length, phase: "postcopy", dirtied: total, sent: requested + pushed, deferred: 0 }, counts, ch.bytesSent - bytesBefore, this.#clock.now() - t0));
    r["postcopy-requests"] = requested;
    r.postcopy = { "pages-requested": requested, "pages-pushed": pushed, "fault-latency-p50-ms": NaN, "fault-latency-p99-ms": NaN };
  }

  async #abort(err: unknown, start: number): Promise<never> {
    const r = this.report;
    r.status = "aborted";
    const e = err as { code?: string; message?: string };
    r.error = { code: e?.code ?? "ERROR", message: e?.message ?? String(err) };
    r.totalTime = (this.#clock.now() - start) * 1000;
    try {
      if (this.#ch) await withTimeout(this.#ch.sendMessage(Message.ABORT, r.error), 0.2, 0, this.#clock);
    } catch {
      // the connection may be what failed
    }
    this.options.transport.close();
    if (this.#paused) {
      this.#paused = false;
      await this.options.onResume?.();
    }
    throw new MigrationAbortedError(r, err);
  }
}
