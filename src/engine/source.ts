// The migration source: drives the stages of a migration over a Channel.
//
//   handshake ──► pre-copy rounds ──► stop-and-copy ──► commit ──► activation
//      HELLO/      round 0: every page   onPause, final     COMPLETE{digest}
//      WELCOME     round n: pages the    harvest, the rest,  ◄── COMMIT_ACK
//                  log saw dirtied       DEVICE_STATE
//                  (selection policy)
//   post-copy / hybrid: after the pause, POSTCOPY_START{pending pages}; the destination
//   runs and requests missing pages (PAGE_REQUEST) which jump the queue, while the rest
//   are pushed in the background starting next to recent faults (pre-paging).
//
// Until COMMIT_ACK arrives the source is primary: any failure aborts (ABORT frame, best
// effort), calls onResume if the guest was paused, and leaves source memory untouched.
import { EncodePipeline, emptyCounts, type CodecOptions, type EncodeCounts } from "../codec/encode-pipeline.js";
import { PageRecordWriter } from "../wire/page-record.js";
import { PagewireError } from "../errors.js";
import { DirtyBitmap } from "../kernel/dirty-bitmap.js";
import { PAGE_SIZE, type Kernel } from "../kernel/kernel.js";
import { loadKernel } from "../kernel/loader.js";
import type { DirtyLog, GuestMemory } from "../memory/guest-memory.js";
import { realClock, withTimeout, type Clock } from "../util/clock.js";
import { yieldToEventLoop } from "../util/yield.js";
import { FRAME_HEADER_BYTES, FRAME_TRAILER_ROOM, FrameType, type FrameKey } from "../wire/frame.js";
import { TokenBucket } from "../transport/rate-limit.js";
import type { Transport } from "../transport/transport.js";
import { chooseMigrationPlan, measureWorkload, type MigrationPlan } from "./auto-mode.js";
import { Channel } from "./channel.js";
import { pushPostcopyPages } from "./postcopy-push.js";
import { digestOfPageHashes, digestSeed, MemoryDigest } from "./digest.js";
import {
  ALL_FEATURES, decodeJson, decodeU32, encodeJson, ProtocolError, randomNonce, sessionNonce,
  type Abort, type CommitAck, type Feature, type Welcome,
} from "../wire/messages.js";
import { MigrationReport, type RoundRow } from "./report.js";
import { PageHistory } from "../policy/page-history.js";
import { createPolicy } from "../policy/registry.js";
import type { NonConvergencePolicy, PageSelectionPolicy, TerminationPolicy } from "../policy/types.js";

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
  policy?: {
    selection?: string | PageSelectionPolicy;
    termination?: string | TerminationPolicy;
    nonConvergence?: string | NonConvergencePolicy;
    options?: Record<string, object>;
  };
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

const NO_NON_CONVERGENCE: NonConvergencePolicy = { kind: "non-convergence", name: "none", check: () => ({ action: "none" }), reset: () => {} };

export class MigrationSource {
  readonly options: MigrationSourceOptions;
  readonly report = new MigrationReport();
  #bucket: TokenBucket;
  #clock: Clock;
  #ch!: Channel;
  #k!: Kernel;
  #pipeline!: EncodePipeline;
  #writer!: PageRecordWriter;
  #paused = false;
  #committed = false;
  // receive side
  #ack: { resolve: (a: CommitAck) => void; reject: (e: unknown) => void } | null = null;
  #ackPromise!: Promise<CommitAck>;
  #remoteError: unknown = null;
  #requests: number[] = [];
  #features: Feature[] = [];
  #nonce = "";
  #plan: MigrationPlan | null = null;
  #finalWord!: Promise<"closed" | "abort">;
  #setFinalWord!: (w: "closed" | "abort") => void;

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
    const start = this.#clock.now();
    r.mode = o.mode ?? (o.dirtyLog ? "precopy" : "stop-and-copy");
    r.ram.total = mem.pageCount * PAGE_SIZE;
    let pausedAt = 0;
    try {
      this.#k = o.kernel ?? (await loadKernel());
      // room for a full frame plus one more batch of raw pages: the buffer never grows
      const frameBytes = o.frameBytes ?? 1 << 20;
      this.#writer = new PageRecordWriter(frameBytes + (o.batchPages ?? 256) * (PAGE_SIZE + 8) + 64, { headroom: FRAME_HEADER_BYTES, tailroom: FRAME_TRAILER_ROOM, kernel: this.#k });
      this.#ch = new Channel(this.#k, o.transport, o.key ?? null, this.#bucket);
      let planCodecs: CodecOptions = {};
      if (r.mode === "auto") {
        const m = await measureWorkload(this.#k, mem, o.dirtyLog, this.#clock, o.autoProbeMs ?? 200);
        const plan = chooseMigrationPlan(m, !!o.dirtyLog, this.#bucket.rate, o.downtimeLimitMs ?? 300);
        r.mode = plan.mode;
        planCodecs = plan.codecs;
        this.#plan = plan;
        r.decisions.push({
          round: 0, kind: "auto", decision: `${plan.mode}, ${plan.selection} selection: ${plan.rule}`,
          inputs: {
            dirtyPagesPerSecond: Math.round(m.dirtyPagesPerSecond), workingSetPages: m.workingSetPages,
            zeroShare: Math.round(m.zeroShare * 1000) / 1000, duplicateShare: Math.round(m.duplicateShare * 1000) / 1000,
            probeSeconds: Math.round(m.probeSeconds * 1000) / 1000, bandwidthBytesPerSecond: this.#bucket.rate,
          },
        });
      }
      await this.#handshake();
      // stages the destination did not accept are off
      const on = (f: Feature) => this.#features.includes(f);
      this.#pipeline = new EncodePipeline(this.#k, mem.pageCount, {
        ...planCodecs, ...o.codecs, zero: on("zero"), xbzrle: on("xbzrle"), rle: on("rle"), dedup: on("dedup"),
      }, o.batchPages);
      r.setupTime = (this.#clock.now() - start) * 1000;
      this.#ackPromise = new Promise((resolve, reject) => (this.#ack = { resolve, reject }));
      this.#finalWord = new Promise((resolve) => (this.#setFinalWord = resolve));
      this.#ackPromise.catch(() => {});
      void this.#pump();

      const pending = new DirtyBitmap(this.#k, mem.pageCount);
      pending.setRange(0, mem.pageCount);
      let mode = r.mode;
      if ((mode === "precopy" || mode === "hybrid") && !o.dirtyLog) {
        throw new PagewireError("DIRTY_LOG_REQUIRED", `mode ${mode} needs a dirty log; use stop-and-copy for memory without one`);
      }
      if (mode === "precopy" || mode === "hybrid") {
        const switchToPostcopy = await this.#precopy(pending, o.maxRounds ?? this.#plan?.maxRounds ?? (mode === "hybrid" ? 3 : 30));
        if (switchToPostcopy && this.#features.includes("postcopy")) {
          mode = r.mode = "hybrid";
        }
      } else if (mode === "postcopy" && o.dirtyLog) {
        o.dirtyLog.start();
      }

      // stop-and-copy: pause, final harvest
      pausedAt = this.#clock.now();
      await o.onPause?.();
      this.#paused = true;
      const postcopy = mode === "postcopy" || mode === "hybrid";
      // a hash-scan log's final scan already hashed the paused guest: the digest comes from it
      let scanned: { digest: string; seed: bigint } | null = null;
      if (o.dirtyLog && mode !== "stop-and-copy") {
        const last = new DirtyBitmap(this.#k, mem.pageCount);
        await o.dirtyLog.harvest(last);
        pending.or(last);
        last.dispose();
        r.ram["dirty-sync-count"]++;
        const table = postcopy ? null : (o.dirtyLog.pageHashes?.() ?? null);
        if (table) scanned = { digest: digestOfPageHashes(this.#k, table.table, table.seed), seed: table.seed };
        o.dirtyLog.stop();
      }
      let digestHex: string;
      let digestSeedHex: string | undefined;
      if (scanned) {
        await this.#sendRound(pending, r.rounds.length, "stop-and-copy", pending.count(), 0);
        await this.#sendDeviceState();
        digestHex = scanned.digest;
        digestSeedHex = scanned.seed.toString(16);
      } else {
        const digest = new MemoryDigest(this.#k, mem.pageCount, digestSeed(this.#nonce));
        if (postcopy) {
          await this.#postcopy(pending, digest, () => (r.downtime = (this.#clock.now() - pausedAt) * 1000));
        } else {
          await this.#sendRound(pending, r.rounds.length, "stop-and-copy", pending.count(), 0);
          await this.#sendDeviceState();
          digest.updateFrom(mem);
        }
        digestHex = digest.digest();
        digest.dispose();
      }
      pending.dispose();
      await this.#ch.send(FrameType.COMPLETE, encodeJson({ digest: digestHex, pagesSent: r.ram["pages-sent"], ...(digestSeedHex ? { seed: digestSeedHex } : {}) }));
      const ack = await this.#ackPromise;
      if (r.postcopy) {
        r.postcopy["fault-latency-p50-ms"] = ack.faultLatencyP50Ms ?? NaN;
        r.postcopy["fault-latency-p99-ms"] = ack.faultLatencyP99Ms ?? NaN;
      }
      if (ack.digest !== digestHex) throw new ProtocolError("DIGEST_MISMATCH", `destination acknowledged digest ${ack.digest}, source has ${digestHex}`);
      this.#committed = true; // the commit point: from here the destination is primary
      await this.#ch.send(FrameType.ACTIVATE, new Uint8Array(0)).catch(() => {});
      // The destination's last word: it closes after activating, or refuses with ABORT (then
      // it will not run, and the source may resume). Silence is taken as success.
      const word = await withTimeout(this.#finalWord, 5, "timeout" as const, this.#clock);
      if (word === "abort") {
        this.#committed = false;
        throw this.#remoteError;
      }
      const end = this.#clock.now();
      if (mode !== "postcopy" && mode !== "hybrid") r.downtime = (end - pausedAt) * 1000;
      r.totalTime = (end - start) * 1000;
      this.#finishStats(end - start);
      o.transport.close();
      return r;
    } catch (err) {
      return this.#abort(err, start);
    } finally {
      this.#pipeline?.dispose();
      this.#ch?.dispose();
      this.#writer?.dispose();
    }
  }

  // ---- stages ------------------------------------------------------------------------------

  async #handshake(): Promise<void> {
    const o = this.options;
    const nonce = (this.#nonce = randomNonce());
    const features = ALL_FEATURES.filter((f) => this.#wants(f));
    await this.#ch.send(FrameType.HELLO, encodeJson({ version: 1, pageSize: PAGE_SIZE, pageCount: o.memory.pageCount, features, mode: this.report.mode, nonce }));
    const f = await this.#ch.expect(FrameType.WELCOME, "handshake");
    const w = decodeJson<Welcome>(f.payload, "WELCOME", { features: "array", nonce: "string" });
    const unknown = w.features.filter((x) => !features.includes(x));
    if (unknown.length) throw new ProtocolError("PROTOCOL_MISMATCH", `destination accepted features that were not offered: ${unknown.join(", ")}`);
    this.#features = w.features;
    if ((this.report.mode === "postcopy" || this.report.mode === "hybrid") && !w.features.includes("postcopy")) {
      throw new ProtocolError("PROTOCOL_MISMATCH", "destination does not support post-copy");
    }
    this.#ch.setSessionNonce(sessionNonce(nonce, w.nonce));
  }

  #wants(f: Feature): boolean {
    const c = this.options.codecs ?? {};
    switch (f) {
      case "zero": return c.zero !== false;
      case "xbzrle": return c.xbzrle !== false;
      case "rle": return c.rle !== false;
      case "dedup": return c.dedup !== false;
      case "postcopy": return true;
      case "device-state": return true;
    }
  }

  /**
   * Iterative pre-copy with the three policies (see policy/types.ts for the round diagram).
   * On return `pending` holds every page still to send (dirty or deferred). Returns true
   * when the non-convergence policy asked to switch to post-copy.
   */
  async #precopy(pending: DirtyBitmap, maxRounds: number): Promise<boolean> {
    const o = this.options;
    const r = this.report;
    const mem = o.memory;
    const log = o.dirtyLog!;
    const k = this.#k;
    const { selection, termination, nonConvergence } = this.#policies();
    r.decisions.push({ round: 0, kind: "policies", decision: `${selection.name} / ${termination.name} / ${nonConvergence.name}` });
    const history = new PageHistory(k, mem.pageCount);
    const send = new DirtyBitmap(k, mem.pageCount);
    const defer = new DirtyBitmap(k, mem.pageCount);
    const harvest = new DirtyBitmap(k, mem.pageCount);
    const redirtied = new DirtyBitmap(k, mem.pageCount);
    const limitMs = o.downtimeLimitMs ?? 300;
    let dirtiedTotal = 0;
    let precopySeconds = 0;
    let previousSeconds: number | undefined;
    let bandwidth = 0;
    let toPostcopy = false;
    log.start();
    try {
      for (let round = 0; ; round++) {
        const t0 = this.#clock.now();
        const candidates = pending.count();
        if (log.peek && round > 0) log.peek(redirtied); // dirtied again since the harvest (Xen's to_skip)
        const res = selection.select({
          round, dirty: pending, history, firstRound: round === 0, lastRound: false, guestPages: mem.pageCount,
          redirtied: log.peek ? redirtied : undefined,
          pagesSent: r.ram["pages-sent"], bandwidthPagesPerSecond: bandwidth / PAGE_SIZE, previousRoundSeconds: previousSeconds,
        }, { send, defer });
        const sentBytes = await this.#sendRound(send, round, "precopy", candidates, res.deferred, res.order);
        history.markSent(send, round);
        if (res.note) r.decisions.push({ round, kind: "selection", decision: res.note });
        // the pages dirtied while this round was sent, plus the deferred ones, are what is pending
        await log.harvest(harvest);
        r.ram["dirty-sync-count"]++;
        history.recordRound(harvest);
        const dirtied = harvest.count();
        pending.copyFrom(harvest).or(defer);
        const seconds = this.#clock.now() - t0;
        previousSeconds = seconds;
        precopySeconds += seconds;
        dirtiedTotal += dirtied;
        bandwidth = Math.min(seconds > 0 ? sentBytes / seconds : Infinity, this.#bucket.rate);
        if (!Number.isFinite(bandwidth)) bandwidth = 0;
        const stats = { round, pageSize: PAGE_SIZE, guestPages: mem.pageCount, pagesSent: r.ram["pages-sent"], bandwidthBytesPerSecond: bandwidth, downtimeLimitMs: limitMs };
        let decision = termination.decide({ ...stats, pendingPages: pending.count() });
        if (decision.action === "sync") {
          await log.harvest(harvest);
          r.ram["dirty-sync-count"]++;
          pending.or(harvest);
          dirtiedTotal += harvest.count();
          decision = termination.decide({ ...stats, pendingPages: pending.count(), afterSync: true });
        }
        const inputs = { pendingPages: pending.count(), bandwidthBytesPerSecond: Math.round(bandwidth), downtimeLimitMs: limitMs };
        if (decision.action === "stop") {
          r.decisions.push({ round, kind: "termination", decision: `${termination.name}: ${decision.reason}`, inputs });
          break;
        }
        const nc = nonConvergence.check({ round, dirtiedBytes: dirtied * PAGE_SIZE, sentBytes });
        if (nc.action === "throttle") {
          r.decisions.push({ round, kind: "non-convergence", decision: `${nonConvergence.name}: throttle guest to ${nc.percent} %`, inputs });
          await o.onThrottle?.(nc.percent);
        } else if (nc.action === "postcopy" || nc.action === "stop") {
          toPostcopy = nc.action === "postcopy";
          r.decisions.push({ round, kind: "non-convergence", decision: `${nonConvergence.name}: ${nc.action}`, inputs });
          break;
        }
        if (round + 1 >= maxRounds) {
          r.decisions.push({ round, kind: "termination", decision: `stopped after maxRounds = ${maxRounds}`, inputs });
          break;
        }
      }
    } finally {
      r.ram["dirty-pages-rate"] = precopySeconds > 0 ? dirtiedTotal / precopySeconds : 0;
      for (const b of [history, send, defer, harvest, redirtied]) b.dispose();
      selection.dispose();
    }
    return toPostcopy;
  }

  #policies(): { selection: PageSelectionPolicy; termination: TerminationPolicy; nonConvergence: NonConvergencePolicy } {
    const p = this.options.policy ?? {};
    const pick = <T>(kind: "selection" | "termination" | "non-convergence", v: string | T | undefined, fallback: string): T =>
      (typeof v === "object" && v ? v : createPolicy(kind, (v as string | undefined) ?? fallback, p.options?.[(v as string | undefined) ?? fallback] ?? {})) as T;
    return {
      selection: pick<PageSelectionPolicy>("selection", p.selection, this.#plan?.selection ?? "vanilla"),
      termination: pick<TerminationPolicy>("termination", p.termination, "qemu"),
      // QEMU's default: no auto-converge; iterate until the termination policy or maxRounds stops
      nonConvergence: p.nonConvergence === undefined ? NO_NON_CONVERGENCE : pick<NonConvergencePolicy>("non-convergence", p.nonConvergence, "force-stop"),
    };
  }

  /** Sends every page set in `pages` as one round; returns the frame bytes sent. */
  async #sendRound(pages: DirtyBitmap, round: number, phase: string, dirtied: number, deferred: number, order?: Uint32Array): Promise<number> {
    const t0 = this.#clock.now();
    const bytesBefore = this.#ch.bytesSent;
    const counts = emptyCounts();
    const list = order ?? pages.collect();
    this.#pipeline.beginRound(round, phase !== "precopy");
    this.#writer.begin(round);
    const batch = this.#pipeline.batchPages;
    for (let i = 0; i < list.length; i += batch) {
      const chunk = list.subarray(i, Math.min(i + batch, list.length));
      await this.#sendBatch(chunk, counts);
      this.#throwIfRemoteFailed();
    }
    await this.#flushFrame();
    await this.#ch.send(FrameType.ROUND_END, encodeJson({ round, pages: list.length }));
    const row: RoundRow = {
      round, phase, dirtied, sent: list.length - counts.skipped, deferred, skipped: counts.skipped,
      zero: counts.zero, raw: counts.raw, xbzrle: counts.xbzrle, rle: counts.rle, dedup: counts.dedup,
      bytes: this.#ch.bytesSent - bytesBefore, seconds: this.#clock.now() - t0,
    };
    this.report.rounds.push(row);
    return row.bytes;
  }

  async #sendBatch(chunk: Uint32Array, roundCounts: EncodeCounts): Promise<void> {
    const frameBytes = this.options.frameBytes ?? 1 << 20;
    const c = emptyCounts();
    this.options.memory.readPages(chunk, this.#pipeline.snapshotView(chunk.length));
    // a content-based dirty log compares its next scan with what is sent now
    this.options.dirtyLog?.observe?.(chunk, this.#pipeline.snapshotView(chunk.length));
    this.#pipeline.encode(chunk, chunk.length, this.#writer, c);
    const r = this.report.ram;
    r.duplicate += c.zero;
    r.normal += c.raw;
    r["normal-bytes"] = r.normal * PAGE_SIZE;
    r["skipped-unchanged"] += c.skipped;
    r["dedup-pages"] += c.dedup;
    r["rle-pages"] += c.rle;
    r["xbzrle-pages"] += c.xbzrle;
    r["pages-sent"] += c.zero + c.raw + c.xbzrle + c.rle + c.dedup;
    for (const key of Object.keys(c) as Array<keyof EncodeCounts>) roundCounts[key] += c[key];
    if (this.#writer.size >= frameBytes) await this.#flushFrame();
  }

  async #flushFrame(): Promise<void> {
    if (this.#writer.count === 0) return;
    const { buffer, length } = this.#writer.take();
    this.#writer.begin(this.report.rounds.length);
    await this.#ch.sendInPlace(FrameType.PAGES, buffer, length);
  }

  async #sendDeviceState(): Promise<void> {
    const state = (await this.options.deviceState?.()) ?? new Uint8Array(0);
    await this.#ch.send(FrameType.DEVICE_STATE, state);
  }

  async #postcopy(pending: DirtyBitmap, digest: MemoryDigest, switched: () => void): Promise<void> {
    const o = this.options;
    const r = this.report;
    const mem = o.memory;
    // the destination needs to know which of its pages are stale or missing
    await this.#sendDeviceState();
    const bits = new Uint8Array(this.#k.memory.buffer, pending.region.ptr, Math.ceil(mem.pageCount / 8)).slice();
    await this.#ch.send(FrameType.POSTCOPY_START, bits);
    switched();
    digest.updateFrom(mem);
    const t0 = this.#clock.now();
    const counts = emptyCounts();
    const total = pending.count();
    const bytesBefore = this.#ch.bytesSent;
    // every pending page is missing at the destination: none may be skipped as unchanged
    this.#pipeline.beginRound(r.rounds.length, true, true);
    this.#writer.begin(r.rounds.length);
    const { requested, pushed } = await pushPostcopyPages({
      pending,
      prepagePages: o.prepagePages ?? 16,
      nextRequest: () => this.#requests.shift(),
      sendPages: async (pages) => {
        await this.#sendBatch(pages, counts);
        await this.#flushFrame();
      },
      checkRemote: () => this.#throwIfRemoteFailed(),
      yieldToRequests: yieldToEventLoop,
    });
    await this.#ch.send(FrameType.POSTCOPY_END, new Uint8Array(0));
    r.rounds.push({
      round: r.rounds.length, phase: "postcopy", dirtied: total, sent: requested + pushed, deferred: 0, skipped: counts.skipped,
      zero: counts.zero, raw: counts.raw, xbzrle: counts.xbzrle, rle: counts.rle, dedup: counts.dedup,
      bytes: this.#ch.bytesSent - bytesBefore, seconds: this.#clock.now() - t0,
    });
    r["postcopy-requests"] = requested;
    r.postcopy = { "pages-requested": requested, "pages-pushed": pushed, "fault-latency-p50-ms": NaN, "fault-latency-p99-ms": NaN };
  }

  // ---- receive side ------------------------------------------------------------------------

  /**
   * Reads frames from the destination for the whole migration. After the acknowledgement
   * it only listens for the destination's last word (close or ABORT); anything else, even
   * a frame that does not verify, no longer changes the outcome.
   */
  async #pump(): Promise<void> {
    let acked = false;
    for (;;) {
      let f;
      try {
        f = await this.#ch.receive();
      } catch (err) {
        if (!acked) return this.#fail(err);
        const code = (err as { code?: string }).code ?? "";
        if (code.startsWith("FRAME_")) continue; // a bad frame after the commit point
        return this.#setFinalWord("closed");
      }
      try {
        if (!f) {
          if (acked) return this.#setFinalWord("closed");
          return this.#fail(new ProtocolError("CONNECTION_CLOSED", "destination closed the connection before the commit"));
        }
        if (f.type === FrameType.ABORT) {
          const a = decodeJson<Abort>(f.payload, "ABORT", { code: "string", message: "string" });
          this.#fail(new PagewireError(a.code, `destination aborted: ${a.message}`));
          if (acked) this.#setFinalWord("abort");
          return;
        }
        if (acked) continue;
        if (f.type === FrameType.PAGE_REQUEST) {
          this.#requests.push(decodeU32(f.payload, "PAGE_REQUEST"));
        } else if (f.type === FrameType.COMMIT_ACK) {
          this.#ack?.resolve(decodeJson<CommitAck>(f.payload, "COMMIT_ACK", { digest: "string" }));
          acked = true;
        } else {
          return this.#fail(new ProtocolError("PROTOCOL_STAGE", `unexpected frame type ${f.type} from the destination`));
        }
      } catch (err) {
        if (!acked) return this.#fail(err);
      }
    }
  }

  #fail(err: unknown): void {
    if (this.#remoteError) return;
    this.#remoteError = err;
    this.#ack?.reject(err);
  }

  #throwIfRemoteFailed(): void {
    if (this.#remoteError) throw this.#remoteError;
  }

  async #abort(err: unknown, start: number): Promise<never> {
    const r = this.report;
    r.status = "aborted";
    const e = err as { code?: string; message?: string };
    r.error = { code: e?.code ?? "ERROR", message: e?.message ?? String(err) };
    r.totalTime = (this.#clock.now() - start) * 1000;
    try {
      if (this.#ch) await withTimeout(this.#ch.send(FrameType.ABORT, encodeJson({ code: r.error.code, message: r.error.message })), 0.2, 0, this.#clock);
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

  #finishStats(seconds: number): void {
    const r = this.report;
    r.ram.transferred = this.#ch.bytesSent;
    r.ram.mbps = seconds > 0 ? (r.ram.transferred * 8) / seconds / 1e6 : 0;
    this.#pipeline.finish();
    r["xbzrle-cache"] = this.#pipeline.stats();
    r.dedup = this.#pipeline.dedupStats();
  }
}
