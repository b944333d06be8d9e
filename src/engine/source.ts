// The migration source: the stages of a migration, in order, and the ownership rules
// around them (engine/ownership.ts has the state machine; wire/messages.ts the frames).
//
//   handshake ──► pre-copy rounds ──► stop-and-copy ─────► commit ──────────► activation
//   (handshake.ts) (precopy-rounds.ts)  onPause, final      COMPLETE{digest}    ACTIVATE
//     CHALLENGE/     round 0: every page  harvest, the rest   ◄── COMMIT_ACK      ◄── ACTIVATED
//     HELLO/WELCOME  round n: what the    (page-sender.ts),   the decision:
//                    selection policy     DEVICE_STATE        COMMIT
//                    picks
//   post-copy / hybrid: after the pause, POSTCOPY_START{pending pages} moves ownership to
//   the destination; it requests missing pages (PAGE_REQUEST, first in line) while the rest
//   are pushed in the background next to recent faults (postcopy-push.ts).
//
// Before the decision any failure aborts: ABORT (best effort), onResume if paused, source
// memory untouched, and the destination told on a new connection when one can be made.
// After it (COMMIT_ACK accepted, or POSTCOPY_START sent) the source never resumes: a lost
// connection is repaired by `reconnect` + RESUME within the reconnect window (post-copy
// recovery resends what the destination still misses); otherwise the migration is in doubt.
import { countRecords, emptyCounts, negotiateCodecs } from "../codec/codecs.js";
import { DEFAULT_CODECS, EncodePipeline, type CodecOptions } from "../codec/encode-pipeline.js";
import { randomSeed } from "../kernel/pagehash.js";
import { PagewireError } from "../errors.js";
import { DirtyBitmap } from "../kernel/dirty-bitmap.js";
import { PAGE_SIZE, type Kernel } from "../kernel/kernel.js";
import { loadKernel } from "../kernel/loader.js";
import { TokenBucket } from "../transport/rate-limit.js";
import { realClock, withTimeout, type Clock } from "../util/clock.js";
import { yieldToEventLoop } from "../util/yield.js";
import { Message, ProtocolError, type ChannelEndpoint, type SourceDecision } from "../wire/messages.js";
import { defaultProbeMs, measureWorkload, type MigrationPlan } from "./auto-mode.js";
import { planMigration } from "./auto-predict.js";
import type { Channel } from "./channel.js";
import { digestOfPageHashes, digestSeed, MemoryDigest } from "./digest.js";
import { offerFeatures } from "./features.js";
import { offerHandshake, type Session } from "./handshake.js";
import { finishReport, roundRow } from "./metrics.js";
import {
  isLinkFailure,
  MigrationInDoubtError,
  MigrationTimeoutError,
  resolveTimeouts,
  type MigrationTimeouts,
  type SourceState,
} from "./ownership.js";
import { PageSender } from "./page-sender.js";
import { resolvePolicies } from "./policies.js";
import { pushPostcopyPages } from "./postcopy-push.js";
import { runPrecopyRounds } from "./precopy-rounds.js";
import { MigrationReport } from "./report.js";
import { SourceLinks } from "./source-links.js";
import { SourceChannels } from "./source-channels.js";
import { ChannelWorkers } from "./channel-workers.js";
import { channelDials, wantedChannels } from "./channel-options.js";
import { WasmGuestMemory } from "../memory/wasm-guest-memory.js";
import { Cancellation } from "./cancellation.js";
import { EventHub, type MigrationProgress, type SourceEvents } from "./migration-events.js";
import { SourceProgress } from "./source-progress.js";

import type { MigrationMode, MigrationSourceOptions } from "./source-options.js";
export type { MigrationMode, MigrationSourceOptions };

/** A migration ended before the decision; the source keeps running the guest. */
export class MigrationAbortedError extends PagewireError {
  constructor(
    readonly report: MigrationReport,
    cause: unknown,
  ) {
    const c = cause as { code?: string; message?: string };
    super("MIGRATION_ABORTED", `migration aborted: ${c?.code ?? "ERROR"}: ${c?.message ?? String(cause)}`, { cause });
  }
}

/** `codecs` without the stages that keep state across rounds (post-copy pushes and recovery: every page goes). */
function statelessCodecs(codecs: CodecOptions): CodecOptions {
  return { zero: codecs.zero, rle: codecs.rle, lz: codecs.lz, unchanged: false, dedup: false, xbzrle: false };
}

/** What post-copy recovery hands back: the destination's answer to RESUME. */
type ResumeOutcome = "done" | "discarded" | "recovered";

export class MigrationSource {
  readonly options: MigrationSourceOptions;
  readonly report = new MigrationReport();
  /** Typed events (engine/migration-events.ts); `on` is the short form. */
  readonly events = new EventHub<SourceEvents>();
  #progress: SourceProgress | null = null;
  #cancel = new Cancellation(undefined, "migration");
  readonly #bucket: TokenBucket;
  readonly #clock: Clock;
  readonly #timeouts: MigrationTimeouts | null;
  #state: SourceState = "running";
  #links: SourceLinks | null = null;
  #channels: SourceChannels | null = null;
  #spawned: Promise<ChannelWorkers> | null = null;
  /** XBZRLE and dedup counters of the closed data channels. */
  #channelStats: { stats: Record<string, number>; dedup: Record<string, number> | null } | null = null;

  constructor(options: MigrationSourceOptions) {
    this.options = options;
    this.#clock = options.clock ?? realClock;
    this.#bucket = new TokenBucket(options.maxBandwidth ?? Infinity, { clock: this.#clock });
    this.#timeouts = resolveTimeouts(options.timeouts);
  }

  /** Where the source stands (engine/ownership.ts): it runs the guest only in "running" and "aborted". */
  get state(): SourceState {
    return this.#state;
  }

  /** Calls `fn` for every event of `type` (see SourceEvents); returns a function that stops it. */
  on<K extends keyof SourceEvents>(type: K, fn: (event: SourceEvents[K] & { type: K }) => void): () => void {
    return this.events.on(type, fn);
  }

  /** The migration as it stands (null before migrate()). */
  get progress(): MigrationProgress | null {
    return this.#progress?.snapshot() ?? null;
  }

  /** Changes the bandwidth limit, bytes per second, effective immediately. */
  setMaxBandwidth(bytesPerSecond: number): void {
    this.#bucket.setRate(bytesPerSecond);
    this.#channels?.setRate(bytesPerSecond);
  }

  /**
   * Runs the migration. Resolves with the report once the destination runs; rejects with
   * MigrationAbortedError (before the decision: the source runs again) or
   * MigrationInDoubtError (after it, when no new connection settled it: neither side runs).
   * `signal` cancels: before the decision the migration aborts with code CANCELLED (the
   * source runs the guest); from the decision on it is ignored.
   */
  async migrate({ signal }: { signal?: AbortSignal } = {}): Promise<MigrationReport> {
    const o = this.options;
    const r = this.report;
    const mem = o.memory;
    const clock = this.#clock;
    const t = this.#timeouts;
    const start = clock.now();
    r.mode = o.mode ?? (o.dirtyLog ? "precopy" : "stop-and-copy");
    r.ram.total = mem.pageCount * PAGE_SIZE;
    const cancel = (this.#cancel = new Cancellation(signal, "migration"));
    const progress = (this.#progress = new SourceProgress({
      clock,
      report: r,
      events: this.events,
      bytesSent: () => (this.#links?.bytesSent ?? 0) + (this.#channels?.liveBytes ?? this.#channelBytes),
      rateLimit: () => this.#bucket.rate,
      intervalMs: o.progressIntervalMs,
    }));
    let pipeline: EncodePipeline | null = null;
    let sender: PageSender | null = null;
    let pending: DirtyBitmap | null = null;
    let switchPending: DirtyBitmap | null = null;
    let session: Session | null = null;
    let told = false; // the destination already knows the migration is off
    try {
      const k = o.kernel ?? (await loadKernel());
      const links = (this.#links = new SourceLinks({
        kernel: k,
        key: o.key ?? null,
        limiter: this.#bucket,
        clock,
        timeouts: t,
        reconnect: o.reconnect,
      }));
      const link = links.open(o.transport);
      cancel.throwIfCancelled();
      const plan = r.mode === "auto" ? await cancel.race(this.#planAuto(k)) : null;
      // channel workers load their code while the handshake runs
      const wanted = this.#channelsWanted(k);
      this.#spawned = wanted ? ChannelWorkers.spawn(k, wanted) : null;
      this.#spawned?.catch(() => {});

      // handshake: stages the destination did not accept are off
      const hs = await cancel.race(
        offerHandshake(link.ch, {
          pageCount: mem.pageCount,
          mode: r.mode,
          features: offerFeatures(o.codecs),
          channels: wanted,
          timeout: t?.handshake,
        }),
      );
      session = hs.session;
      const on = (f: string) => hs.features.includes(f as never);
      if ((r.mode === "postcopy" || r.mode === "hybrid") && !on("postcopy"))
        throw new ProtocolError("PROTOCOL_MISMATCH", "destination does not support post-copy");
      const codecs = { ...plan?.codecs, ...o.codecs, ...negotiateCodecs(hs.features) };
      if (hs.channels.length) {
        await this.#openChannels(hs.channels, session, codecs);
        // the channels carry every round; this thread only pushes post-copy pages, which need no shared state
        pipeline = new EncodePipeline(k, mem.pageCount, statelessCodecs(codecs), o.batchPages);
      } else {
        await this.#dropSpawned();
        pipeline = new EncodePipeline(k, mem.pageCount, codecs, o.batchPages);
      }
      r.setupTime = (clock.now() - start) * 1000;
      this.events.emit("handshake", {
        mode: r.mode,
        features: [...hs.features],
        channels: r.channels,
        pageCount: mem.pageCount,
      });
      link.inbox.start();
      sender = this.#newSender(k, pipeline);

      // pre-copy
      if (o.preamble) await link.ch.sendMessage(Message.PREAMBLE, o.preamble);
      pending = new DirtyBitmap(k, mem.pageCount);
      if (!o.dirtyOnly) pending.setRange(0, mem.pageCount);
      let mode = r.mode;
      if ((mode === "precopy" || mode === "hybrid") && !o.dirtyLog) {
        throw new PagewireError(
          "DIRTY_LOG_REQUIRED",
          `mode ${mode} needs a dirty log; use stop-and-copy for memory without one`,
        );
      }
      if (mode === "precopy" || mode === "hybrid") {
        const toPostcopy = await this.#precopy(
          k,
          sender,
          pending,
          digestSeed(session.sourceNonce),
          o.maxRounds ?? plan?.maxRounds ?? (mode === "hybrid" ? 3 : 30),
          plan,
        );
        if (toPostcopy && on("postcopy")) mode = r.mode = "hybrid";
      } else if (mode === "postcopy" && o.dirtyLog) {
        o.dirtyLog.start({ digestSeed: digestSeed(session.sourceNonce) });
      }

      // stop-and-copy: pause, final harvest
      cancel.throwIfCancelled();
      const pausedAt = clock.now();
      await o.onPause?.();
      this.#state = "paused";
      this.events.emit("pause", { pendingPages: pending.count() });
      progress.phase("stop-and-copy"); // the guest is paused (post-copy: until the switch)
      const postcopy = mode === "postcopy" || mode === "hybrid";
      // a hash-scan log's final scan already hashed the paused guest: the digest comes from it
      let scanned: { digest: string; seed: bigint } | null = null;
      if (o.dirtyLog && mode !== "stop-and-copy") {
        const last = new DirtyBitmap(k, mem.pageCount);
        await o.dirtyLog.harvest(last);
        pending.or(last);
        progress.harvested(last.count());
        last.dispose();
        r.ram["dirty-sync-count"]++;
        const table = postcopy ? null : (o.dirtyLog.pageHashes?.() ?? null);
        if (table) scanned = { digest: digestOfPageHashes(k, table.table, table.seed), seed: table.seed };
        o.dirtyLog.stop();
      }
      if (!postcopy) {
        const dirtied = pending.count();
        progress.beginRound(r.rounds.length, "stop-and-copy", dirtied, dirtied);
        await sender.sendRound(pending, { round: r.rounds.length, phase: "stop-and-copy", dirtied, deferred: 0 });
        progress.endRound(r.rounds.at(-1)!);
      }
      await this.#closeChannels(); // every page the channels carry is sent
      await this.#sendDeviceState(link.ch);
      // the digest of the paused guest (a hash-scan log's final scan already has it)
      const complete = {
        digest: scanned?.digest ?? "",
        pagesSent: 0,
        ...(scanned ? { seed: scanned.seed.toString(16) } : {}),
      };
      const digestPausedGuest = () => {
        const digest = new MemoryDigest(k, mem.pageCount, digestSeed(session!.sourceNonce));
        digest.updateFrom(mem);
        complete.digest = digest.digest();
        digest.dispose();
      };
      if (postcopy) switchPending = new DirtyBitmap(k, mem.pageCount).copyFrom(pending);

      // post-copy push, commit and activation; after the decision a lost connection is repaired
      for (;;) {
        try {
          if (postcopy && this.#state === "paused") {
            // the switch: from the moment POSTCOPY_START may have left, the destination owns the guest
            this.#state = "postcopy";
            cancel.disarm(); // POSTCOPY_START may leave from here: the destination owns the guest
            await links.current.ch.sendMessage(
              Message.POSTCOPY_START,
              new Uint8Array(k.memory.buffer, pending.region.ptr, Math.ceil(mem.pageCount / 8)).slice(),
            );
            links.current.inbox.acceptRequests();
            r.downtime = (clock.now() - pausedAt) * 1000;
            this.events.emit("postcopy", { missingPages: pending.count() });
          }
          if (!complete.digest) digestPausedGuest();
          if (this.#state === "postcopy") await this.#pushPostcopy(sender, pending);
          complete.pagesSent = r.ram["pages-sent"];
          await this.#commit(complete);
          break;
        } catch (err) {
          if (this.#state === "paused") throw err; // before the decision: abort
          if (!isLinkFailure(err)) {
            if ((this.#state as SourceState) === "committed") {
              // the destination refused to activate: it discarded, so the source may run again
              this.#state = "paused";
              throw err;
            }
            throw this.#inDoubt(
              new MigrationInDoubtError(
                "source",
                "postcopy",
                `post-copy failed after the switch: ${(err as Error).message}`,
                { cause: err },
              ),
            );
          }
          links.closeCurrent(); // the destination notices and waits for the new connection
          const outcome = await this.#resume(k, session, pending, switchPending, err);
          if (outcome === "done") break;
          if (outcome === "discarded") {
            this.#state = "paused"; // the destination never ran the guest: abort and resume here
            told = true;
            throw err;
          }
          // recovered: what the destination misses goes again, with stages that need no shared state
          pipeline.dispose();
          pipeline = new EncodePipeline(
            k,
            mem.pageCount,
            statelessCodecs({ zero: on("zero"), rle: on("rle"), lz: on("lz") }),
            o.batchPages,
          );
          sender.dispose();
          sender = this.#newSender(k, pipeline);
        }
      }
      this.#state = "done";
      const end = clock.now();
      if (!postcopy) r.downtime = (end - pausedAt) * 1000;
      r.totalTime = (end - start) * 1000;
      finishReport(r, links.bytesSent + (this.#channelStats ? this.#channelBytes : 0), end - start, pipeline);
      if (this.#channelStats) {
        r["xbzrle-cache"] = this.#channelStats.stats;
        r.dedup = this.#channelStats.dedup;
      }
      links.closeCurrent();
      progress.finish("done");
      this.events.emit("activate", { totalTimeMs: r.totalTime, downtimeMs: r.downtime });
      return r;
    } catch (caught) {
      if (caught instanceof MigrationInDoubtError) throw caught;
      // a cancel interrupts whatever waited; the failure it caused is the cancel
      const beforeDecision = this.#state === "running" || this.#state === "paused";
      const err = beforeDecision && cancel.error ? cancel.error : caught;
      if (this.#state === "committed" || this.#state === "postcopy") {
        throw this.#inDoubt(
          new MigrationInDoubtError(
            "source",
            this.#state === "committed" ? "commit" : "postcopy",
            `failed after the decision: ${(err as Error).message}`,
            { cause: err },
          ),
        );
      }
      return await this.#abort(err, start, told ? null : session);
    } finally {
      cancel.dispose();
      pending?.dispose();
      switchPending?.dispose();
      pipeline?.dispose();
      sender?.dispose();
      await this.#closeChannels().catch(() => {});
      this.#links?.dispose();
    }
  }

  /**
   * Settles a migration left in doubt, as the operator decides: "resume" runs the guest
   * here again (only right when the destination discarded or never ran it), "stop" keeps it
   * stopped for good (the destination runs it).
   */
  async resolve(decision: "resume" | "stop"): Promise<void> {
    if (this.#state !== "in-doubt")
      throw new PagewireError("NOT_IN_DOUBT", `the migration is ${this.#state}, not in doubt`);
    if (decision === "stop") {
      this.#state = "done";
      return;
    }
    this.#state = "aborted";
    await this.options.onResume?.();
  }

  // ---- connections -------------------------------------------------------------------------

  /** Data channels to ask for: none unless configured, the mode has rounds, and Workers can read the guest's RAM in place. */
  #channelsWanted(k: Kernel): number {
    const o = this.options;
    if (this.report.mode === "postcopy") return 0; // no rounds for channels to carry
    const n = wantedChannels(o.channels);
    const shareable =
      o.memory instanceof WasmGuestMemory &&
      o.memory.kernel === k &&
      k.shared &&
      !o.dirtyLog?.observe &&
      !o.codecs?.dedupIndex;
    return shareable ? n : 0;
  }

  async #openChannels(endpoints: ChannelEndpoint[], session: Session, codecs: CodecOptions): Promise<void> {
    const o = this.options;
    const { dedupIndex: _, hashSeed, ...flags } = codecs;
    const pool = await this.#spawned!;
    this.#spawned = null;
    this.#channels = await SourceChannels.open(pool, {
      memory: o.memory as WasmGuestMemory,
      dials: channelDials(o.channels!, endpoints),
      session,
      key: o.key?.key ?? null,
      timeouts: this.#timeouts,
      codecs: { ...DEFAULT_CODECS, ...flags },
      hashSeed: hashSeed ?? randomSeed(),
      batchPages: o.batchPages ?? 256,
      frameBytes: o.frameBytes ?? 1 << 20,
      rate: this.#bucket.rate,
    });
    this.report.channels = this.#channels.count;
    this.#channels.onRoundProgress = (pages) => this.#progress?.setRoundDone(pages);
  }

  #channelBytes = 0;

  /** Stops workers spawned for channels the destination did not take (or before they got them). */
  async #dropSpawned(): Promise<void> {
    const spawned = this.#spawned;
    this.#spawned = null;
    await ChannelWorkers.release(spawned);
  }

  /** Closes the data channels (their pages are all sent), keeping their counters for the report. */
  async #closeChannels(): Promise<void> {
    await this.#dropSpawned();
    const channels = this.#channels;
    if (!channels) return;
    this.#channels = null;
    this.#channelBytes = channels.bytesSent;
    this.#channelStats = await channels.close();
  }

  #newSender(k: Kernel, pipeline: EncodePipeline): PageSender {
    const o = this.options;
    return new PageSender({
      kernel: k,
      memory: o.memory,
      dirtyLog: o.dirtyLog,
      channel: () => this.#links!.current.ch,
      pipeline,
      report: this.report,
      clock: this.#clock,
      frameBytes: o.frameBytes ?? 1 << 20,
      checkRemote: () => {
        this.#links!.current.inbox.throwIfFailed();
        this.#cancel.throwIfCancelled();
      },
      channels: () => this.#channels,
      onPages: (n) => this.#progress?.pagesDone(n),
      race: (wait) => this.#cancel.race(wait),
    });
  }

  /**
   * After a lost connection: reconnects within the window and tells the destination the
   * decision. Returns what the destination answered; throws MigrationInDoubtError when no
   * connection could be made.
   */
  async #resume(
    k: Kernel,
    session: Session,
    pending: DirtyBitmap,
    switchPending: DirtyBitmap | null,
    cause: unknown,
  ): Promise<ResumeOutcome> {
    const decision: SourceDecision = this.#state === "committed" ? "commit" : "postcopy";
    const lostAt = this.#clock.now();
    const link = await this.#links!.resume(session, decision);
    if (!link) {
      const what =
        decision === "commit"
          ? "the source committed but the destination may not know"
          : "the destination runs the guest but misses pages";
      throw this.#inDoubt(
        new MigrationInDoubtError(
          "source",
          decision,
          `connection lost after the decision (${what}); no new connection within the reconnect window: ${(cause as Error).message}`,
          { cause },
        ),
      );
    }
    const t = this.#timeouts;
    let f = await link.ch.receive(t ? { seconds: t.activation, stage: "resume" } : undefined);
    // a fault's request may come before the answer: the recovery bitmap covers its page anyway
    while (f?.type === Message.PAGE_REQUEST.type && decision === "postcopy")
      f = await link.ch.receive(t ? { seconds: t.activation, stage: "resume" } : undefined);
    if (!f) throw new ProtocolError("CONNECTION_CLOSED", "resume: the destination closed the new connection");
    const r = this.report;
    r.recovery.count++;
    r.recovery["paused-ms"] += (this.#clock.now() - lostAt) * 1000;
    this.events.emit("recovery", { count: r.recovery.count });
    if (f.type === Message.RESUMED.type) {
      const { state } = Message.RESUMED.decode(f.payload);
      if (state !== "active" && state !== "discarded")
        throw new ProtocolError("PROTOCOL_MESSAGE", `RESUMED: unknown state '${String(state).slice(0, 20)}'`);
      return state === "active" ? "done" : "discarded";
    }
    if (f.type !== Message.POSTCOPY_RECOVER.type || decision !== "postcopy")
      throw new ProtocolError("PROTOCOL_STAGE", `resume: unexpected frame type ${f.type}`);
    // the destination's bitmap of pages it still misses is what goes again
    const missing = Message.POSTCOPY_RECOVER.decode(f.payload);
    const n = this.options.memory.pageCount;
    if (missing.length !== Math.ceil(n / 8))
      throw new ProtocolError(
        "PROTOCOL_MESSAGE",
        `POSTCOPY_RECOVER bitmap of ${missing.length} bytes, want ${Math.ceil(n / 8)}`,
      );
    pending.clearAll();
    for (let p = 0; p < n; p++) if ((missing[p >>> 3] >>> (p & 7)) & 1) pending.set(p);
    const extra = new DirtyBitmap(k, n).copyFrom(pending).andNot(switchPending!);
    const stray = extra.count();
    extra.dispose();
    if (stray)
      throw new ProtocolError(
        "PROTOCOL_MESSAGE",
        `POSTCOPY_RECOVER asks for ${stray} pages the destination had at the switch`,
      );
    link.inbox.start();
    link.inbox.acceptRequests();
    return "recovered";
  }

  #inDoubt(err: MigrationInDoubtError): MigrationInDoubtError {
    this.#state = "in-doubt";
    const r = this.report;
    r.status = "in-doubt";
    r.error = { code: err.code, message: err.message };
    this.events.emit("in-doubt", r.error);
    this.#links?.closeCurrent();
    return err;
  }

  // ---- stages ------------------------------------------------------------------------------

  /** Auto mode: measures the guest, picks mode, selection and codecs, and reports why. */
  async #planAuto(k: Kernel): Promise<MigrationPlan> {
    const o = this.options;
    const probeMs = o.autoProbeMs ?? defaultProbeMs(o.memory.pageCount, this.#bucket.rate);
    const m = await measureWorkload(k, o.memory, o.dirtyLog, this.#clock, probeMs);
    const plan = await planMigration(m, {
      kernel: k,
      memory: o.memory,
      hasDirtyLog: !!o.dirtyLog,
      bandwidthBytesPerSecond: this.#bucket.rate,
      downtimeLimitMs: o.downtimeLimitMs ?? 300,
      policy: o.policy,
      maxRounds: o.maxRounds,
      codecs: o.codecs,
      auto: o.auto,
      clock: this.#clock,
    });
    this.report.mode = plan.mode;
    this.report.decisions.push({
      round: 0,
      kind: "auto",
      decision: `${plan.mode}, ${plan.selection} selection: ${plan.rule}`,
      inputs: {
        dirtyPagesPerSecond: Math.round(m.dirtyPagesPerSecond),
        workingSetPages: m.workingSetPages,
        zeroShare: Math.round(m.zeroShare * 1000) / 1000,
        duplicateShare: Math.round(m.duplicateShare * 1000) / 1000,
        probeSeconds: Math.round(m.probeSeconds * 1000) / 1000,
        bandwidthBytesPerSecond: this.#bucket.rate,
        ...plan.inputs,
      },
    });
    return plan;
  }

  /** Pre-copy rounds over the wire; returns true when the non-convergence policy asked for post-copy. */
  async #precopy(
    k: Kernel,
    sender: PageSender,
    pending: DirtyBitmap,
    seed: bigint,
    maxRounds: number,
    plan: MigrationPlan | null,
  ): Promise<boolean> {
    const o = this.options;
    const r = this.report;
    const { selection, termination, nonConvergence } = resolvePolicies(o.policy, plan?.selection);
    r.decisions.push({
      round: 0,
      kind: "policies",
      decision: `${selection.name} / ${termination.name} / ${nonConvergence?.name ?? "none"}`,
    });
    try {
      const outcome = await runPrecopyRounds({
        kernel: k,
        pageCount: o.memory.pageCount,
        dirtyLog: o.dirtyLog!,
        logSession: { digestSeed: seed },
        selection,
        termination,
        nonConvergence,
        clock: this.#clock,
        maxRounds,
        minRoundMs: o.minRoundMs,
        history: o.history,
        downtimeLimitMs: o.downtimeLimitMs ?? 300,
        pending,
        decisions: r.decisions,
        sendRound: async ({ round, send, order, candidates, deferred, skip }) => {
          this.#cancel.throwIfCancelled();
          const progress = this.#progress!;
          progress.beginRound(round, "precopy", candidates - deferred, candidates);
          const bytes = await sender.sendRound(
            send,
            { round, phase: "precopy", dirtied: candidates, deferred },
            order,
            skip,
          );
          progress.endRound(r.rounds.at(-1)!);
          return bytes;
        },
        estimateBandwidth: (sent) => {
          if (!sent) return 0;
          const measured = Math.min(sent.seconds > 0 ? sent.bytes / sent.seconds : Infinity, this.#bucket.rate);
          return Number.isFinite(measured) ? measured : 0;
        },
        pagesSent: () => r.ram["pages-sent"],
        onSync: (dirtied) => {
          r.ram["dirty-sync-count"]++;
          this.#progress!.harvested(dirtied);
        },
        onLogStart: () => this.#progress!.logStarted(),
        onThrottle: o.onThrottle,
      });
      r.ram["dirty-pages-rate"] = outcome.seconds > 0 ? outcome.dirtiedPages / outcome.seconds : 0;
      r.stoppedBy = outcome.stoppedBy;
      return outcome.toPostcopy;
    } finally {
      selection.dispose();
    }
  }

  async #sendDeviceState(ch: Channel): Promise<void> {
    const state = (await this.options.deviceState?.()) ?? new Uint8Array(0);
    await ch.sendMessage(Message.DEVICE_STATE, state);
  }

  /** Post-copy: pushes every pending page (demand requests first), then POSTCOPY_END. */
  async #pushPostcopy(sender: PageSender, pending: DirtyBitmap): Promise<void> {
    const r = this.report;
    const link = this.#links!.current;
    const t0 = this.#clock.now();
    const counts = emptyCounts();
    const total = pending.count();
    const bytesBefore = link.ch.bytesSent;
    // every pending page is missing at the destination: none may be skipped as unchanged
    sender.begin(r.rounds.length, true, true);
    this.#progress?.beginRound(r.rounds.length, "postcopy", total, total);
    const tally = { requested: 0, pushed: 0 };
    try {
      await pushPostcopyPages(
        {
          pending,
          prepagePages: this.options.prepagePages ?? 16,
          nextRequest: () => link.inbox.nextRequest(),
          sendPages: async (pages) => {
            await sender.sendBatch(pages, counts);
            await sender.flush();
          },
          checkRemote: () => link.inbox.throwIfFailed(),
          yieldToRequests: yieldToEventLoop,
        },
        tally,
      );
      await link.ch.sendMessage(Message.POSTCOPY_END, undefined);
    } finally {
      // a push cut short by a lost connection still counts what it sent on it
      const row = {
        round: r.rounds.length,
        phase: "postcopy",
        dirtied: total,
        sent: countRecords(counts),
        deferred: 0,
      };
      r.rounds.push(roundRow(row, counts, link.ch.bytesSent - bytesBefore, this.#clock.now() - t0));
      this.#progress?.endRound(r.rounds.at(-1)!);
      r["postcopy-requests"] += tally.requested;
      const p = (r.postcopy ??= {
        "pages-requested": 0,
        "pages-pushed": 0,
        "fault-latency-p50-ms": NaN,
        "fault-latency-p99-ms": NaN,
      });
      p["pages-requested"] += tally.requested;
      p["pages-pushed"] += tally.pushed;
    }
  }

  /** COMPLETE → COMMIT_ACK (the decision) → ACTIVATE → ACTIVATED. */
  async #commit(complete: { digest: string; pagesSent: number; seed?: string }): Promise<void> {
    const r = this.report;
    const link = this.#links!.current;
    const t = this.#timeouts;
    this.#progress?.phase("commit");
    await link.ch.sendMessage(Message.COMPLETE, complete);
    const ack = await this.#within(this.#cancel.race(link.inbox.ack), t?.commit, "COMMIT");
    if (r.postcopy) {
      r.postcopy["fault-latency-p50-ms"] = ack.faultLatencyP50Ms ?? NaN;
      r.postcopy["fault-latency-p99-ms"] = ack.faultLatencyP99Ms ?? NaN;
    }
    if (ack.digest !== complete.digest)
      throw new ProtocolError(
        "DIGEST_MISMATCH",
        `destination acknowledged digest ${ack.digest}, source has ${complete.digest}`,
      );
    this.#cancel.throwIfCancelled();
    await this.options.onCommit?.(); // may still refuse (throw): then the migration aborts
    this.#state = "committed"; // the decision: from here the source never resumes
    this.#cancel.disarm();
    this.events.emit("commit", {});
    // a failed send is not the answer: what the destination said (ACTIVATED, ABORT or nothing) is
    await link.ch.sendMessage(Message.ACTIVATE, undefined).catch(() => {});
    await this.#within(link.inbox.activated, t?.activation, "ACTIVATION");
  }

  async #within<T>(promise: Promise<T>, seconds: number | undefined, stage: "COMMIT" | "ACTIVATION"): Promise<T> {
    if (seconds === undefined) return promise;
    const timedOut = Symbol("timeout");
    const v = await withTimeout(promise, seconds, timedOut, this.#clock);
    if (v !== timedOut) return v as T;
    this.#links?.closeCurrent();
    throw new MigrationTimeoutError(
      stage === "COMMIT" ? "TIMEOUT_COMMIT" : "TIMEOUT_ACTIVATION",
      `no answer from the destination for ${seconds} s (${stage.toLowerCase()})`,
    );
  }

  async #abort(err: unknown, start: number, session: Session | null): Promise<never> {
    const r = this.report;
    r.status = "aborted";
    const e = err as { code?: string; message?: string };
    r.error = { code: e?.code ?? "ERROR", message: e?.message ?? String(err) };
    r.totalTime = (this.#clock.now() - start) * 1000;
    const link = this.#links?.current ?? null;
    let delivered = false;
    try {
      if (link)
        delivered = await withTimeout(
          link.ch.sendMessage(Message.ABORT, r.error).then(() => true),
          0.2,
          false,
          this.#clock,
        );
    } catch {
      // the connection may be what failed
    }
    link?.ch.transport.close();
    const wasPaused = this.#state === "paused";
    this.#state = "aborted";
    if (wasPaused) await this.options.onResume?.();
    this.#progress?.finish(this.#progress.snapshot().phase);
    this.events.emit("abort", r.error);
    // a destination that lost the connection, or whose ABORT stayed queued behind page frames
    // (cut off by the close: to it, a lost connection), waits for a word: tell it on a new one
    // (session null: it knows)
    if (session && (isLinkFailure(err) || !delivered) && link) {
      try {
        const told = await this.#links!.resume(session, "abort");
        if (told)
          await told.ch.receive(this.#timeouts ? { seconds: this.#timeouts.handshake, stage: "resume" } : undefined);
      } catch {
        // best effort: a destination that hears nothing discards when its window ends
      }
    }
    throw new MigrationAbortedError(r, err);
  }
}
