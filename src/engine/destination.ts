// The migration destination: the receiving half of source.ts's diagram, with the
// ownership rules of engine/ownership.ts.
//
//   state            accepts                                    then
//   receiving        PAGES, ROUND_END, DEVICE_STATE             COMPLETE → verify digest, flush → COMMIT_ACK → prepared
//                    POSTCOPY_START                             → postcopy (the guest runs here from now on)
//   prepared         ACTIVATE                                   commit the memory → active → ACTIVATED
//   postcopy         PAGES (missing pages only), POSTCOPY_END,  COMPLETE → verify → COMMIT_ACK;
//                    ACTIVATE                                   ACTIVATE → active → ACTIVATED
//
// Anything else is a ProtocolError. A lost connection (closed, cut, corrupted or silent
// past a timeout) is not the end: the destination accepts new connections for the
// reconnect window and settles by the source's RESUME (abort: discard; commit: activate;
// post-copy: POSTCOPY_RECOVER with the pages still missing, then post-copy goes on).
// While receiving, a failure discards; once prepared or running, nothing is discarded on
// this side's own account: without a RESUME in the window receive() rejects with
// MigrationInDoubtError and resolve() settles it.
import { PageApplier } from "../codec/page-applier.js";
import { PagewireError } from "../errors.js";
import { DirtyBitmap } from "../kernel/dirty-bitmap.js";
import type { Kernel } from "../kernel/kernel.js";
import { loadKernel } from "../kernel/loader.js";
import type { GuestMemory } from "../memory/guest-memory.js";
import type { Transport } from "../transport/transport.js";
import { realClock, withTimeout, type Clock } from "../util/clock.js";
import { FrameType, frameTypeName, type FrameKey } from "../wire/frame.js";
import { Message, ProtocolError } from "../wire/messages.js";
import { readPageRecords, RecordKind } from "../wire/page-record.js";
import { Channel } from "./channel.js";
import { channelListens, MAX_CHANNELS, wantedChannels } from "./channel-options.js";
import { DestinationChannels } from "./destination-channels.js";
import { ChannelWorkers } from "./channel-workers.js";
import type { ChannelOptions } from "./source-options.js";
import { WasmGuestMemory } from "../memory/wasm-guest-memory.js";
import { Cancellation } from "./cancellation.js";
import { EventHub, type DestinationEvents, type DestinationProgress } from "./migration-events.js";
import { digestSeed, MemoryDigest } from "./digest.js";
import { IMPLEMENTED_FEATURES, type Feature } from "./features.js";
import { answerHello, readHello, readResume, sendChallenge, type Session } from "./handshake.js";
import {
  isLinkFailure,
  MigrationInDoubtError,
  MigrationTimeoutError,
  resolveTimeouts,
  type DestinationState,
  type MigrationTimeouts,
} from "./ownership.js";

/** Destination memory; commit/discard make a file destination transactional (FileMemory). */
export type DestinationMemory = GuestMemory & {
  /**
   * Every page reads as zeros until the migration writes it (fresh memory): the digest needs
   * no read of unwritten pages, and ZERO records for them are neither written nor read. Say
   * so only of memory that really is zero: a page that is not would keep its bytes unseen.
   */
  zeroed?: boolean;
  commit?(): Promise<void>;
  discard?(): Promise<void>;
  /** Called when the memory must outlive this process (prepared, or running in post-copy). */
  prepare?(note: { postcopy: boolean; missingPages: number; deviceState: Uint8Array }): Promise<void>;
};

export interface MigrationDestinationOptions {
  /** The memory to receive into, or a factory called with the source's page count after the handshake's HELLO. */
  memory: DestinationMemory | ((pageCount: number) => DestinationMemory | Promise<DestinationMemory>);
  transport: Transport;
  /** The next connection to this destination (TCP: the listener's next accept), for a source resuming after a lost one. */
  accept?: () => Promise<Transport>;
  kernel?: Kernel;
  key?: FrameKey;
  /** Features this side accepts (default: all it implements). */
  features?: Feature[];
  /** Other guests' memories here, by guest id, for gang-migration dedup references. */
  guests?: ReadonlyMap<number, GuestMemory>;
  clock?: Clock;
  /** Seconds per wait (see MigrationTimeouts); `false`: none (virtual-time runs). */
  timeouts?: Partial<MigrationTimeouts> | false;
  /** The source's PREAMBLE (its caller's opaque header), before any page; without it a PREAMBLE is refused. */
  onPreamble?: (bytes: Uint8Array) => void | Promise<void>;
  /**
   * Each page a PAGES frame on the main connection wrote, as it is written (pre-copy and
   * post-copy). Pages that data channels write are not reported: `dataChannels` says whether
   * any are in use (after the handshake).
   */
  onPageWritten?: (page: number) => void;
  /** After each pre-copy round's pages are all in memory (its ROUND_END, every data channel synced). */
  onRound?: (round: number) => void | Promise<void>;
  /** Called once the destination guest may run: at POSTCOPY_START, or at activation otherwise. */
  onActivate?: () => void | Promise<void>;
  /**
   * Data channels this side accepts (as many as the source asks, at most `count`): each a
   * Worker applying its stripe of the pages straight into guest RAM. Needs the memory to be a
   * WasmGuestMemory on this shared kernel; otherwise none are accepted.
   */
  channels?: ChannelOptions;
  /** Milliseconds between two `progress` events (default 250; each round's end emits one as well). */
  progressIntervalMs?: number;
}

/** What the destination received, once it runs. */
export interface DestinationResult {
  committed: true;
  mode: string;
  deviceState: Uint8Array;
  pagesReceived: number;
  bytesReceived: number;
  digest: string;
  /** Connections that replaced a lost one. */
  recoveries: number;
  postcopy?: { requests: number; faultLatencyP50Ms: number; faultLatencyP99Ms: number };
}

const TIMED_OUT = Symbol("timed out");

export class MigrationDestination {
  readonly options: MigrationDestinationOptions;
  readonly #clock: Clock;
  readonly #timeouts: MigrationTimeouts | null;
  #state: DestinationState = "receiving";
  #ch: Channel | null = null;
  readonly #channels: Channel[] = [];
  #k!: Kernel;
  #missing: DirtyBitmap | null = null;
  #waiters = new Map<number, Array<() => void>>();
  #latencies: number[] = [];
  #digest: MemoryDigest | null = null;
  #error: unknown = null;
  #memory: DestinationMemory | null = null;
  #mode = "precopy";
  #deviceState = new Uint8Array(0);
  #pages = 0;
  #recoveries = 0;
  #acked: string | null = null;
  #dataChannels: DestinationChannels | null = null;
  #spawned: Promise<ChannelWorkers> | null = null;
  #channelPages = 0;
  #channelBytes = 0;
  /** Typed events (engine/migration-events.ts); `on` is the short form. */
  readonly events = new EventHub<DestinationEvents>();
  #cancel = new Cancellation(undefined, "receive");
  #start = 0;
  #round = -1;
  #lastProgress = -Infinity;

  constructor(options: MigrationDestinationOptions) {
    this.options = options;
    this.#clock = options.clock ?? realClock;
    this.#timeouts = resolveTimeouts(options.timeouts);
  }

  /** Where the destination stands (engine/ownership.ts). */
  get state(): DestinationState {
    return this.#state;
  }

  /** Calls `fn` for every event of `type` (see DestinationEvents); returns a function that stops it. */
  on<K extends keyof DestinationEvents>(type: K, fn: (event: DestinationEvents[K] & { type: K }) => void): () => void {
    return this.events.on(type, fn);
  }

  /** What has arrived so far. */
  get progress(): DestinationProgress {
    return {
      state: this.#state,
      round: this.#round,
      elapsedMs: Math.round((this.#clock.now() - this.#start) * 1e6) / 1000,
      pagesReceived: this.#pages + this.#channelPages + (this.#dataChannels?.pagesReceived ?? 0),
      bytesReceived:
        this.#channels.reduce((sum, c) => sum + c.transport.bytesReceived, 0) +
        this.#channelBytes +
        (this.#dataChannels?.bytesReceived ?? 0),
      missingPages: this.missingPages,
    };
  }

  /** Emits `progress` when the interval has passed (or `force`). */
  #tick(force = false): void {
    if (!this.events.has("progress")) return;
    const now = this.#clock.now();
    if (!force && (now - this.#lastProgress) * 1000 < (this.options.progressIntervalMs ?? 250)) return;
    this.#lastProgress = now;
    this.events.emit("progress", { progress: this.progress });
  }

  /**
   * The per-page XXH3-128 hashes of what the pages written so far hold (16 bytes per page,
   * a fresh view of kernel memory; entries of pages no record wrote are stale), or null
   * outside receive().
   */
  pageHashes(): Uint8Array | null {
    const d = this.#digest;
    return d ? new Uint8Array(this.#k.memory.buffer, d.tableAddress, d.pageCount * 16) : null;
  }

  /** Data channels in use (0 before the handshake, or when none were accepted). */
  get dataChannels(): number {
    return this.#dataChannels?.endpoints.length ?? 0;
  }

  /** Pages the destination still misses (post-copy); 0 otherwise. */
  get missingPages(): number {
    return this.#missing?.count() ?? 0;
  }

  /** True once the destination guest may run (after the post-copy switch or the activation). */
  get running(): boolean {
    return (
      this.#state === "postcopy" ||
      this.#state === "postcopy-paused" ||
      this.#state === "active" ||
      (this.#state === "in-doubt" && this.#missing !== null)
    );
  }

  /**
   * Post-copy: resolves once `page` holds its migrated content, requesting it from the
   * source if it is still missing. The destination guest calls this on a fault; while
   * the connection is being recovered it waits (the guest blocks, as QEMU's postcopy-paused).
   */
  async ensurePage(page: number): Promise<void> {
    if (this.#error) throw this.#error;
    if (!this.#missing?.get(page)) return;
    const t0 = this.#clock.now();
    let list = this.#waiters.get(page);
    const first = !list;
    if (!list) this.#waiters.set(page, (list = []));
    const arrived = new Promise<void>((resolve) => list!.push(resolve));
    if (first) {
      // while the connection is being recovered the request would race the RESUME answer;
      // the recovery bitmap covers the page instead
      const ch = this.#state === "postcopy" ? this.#ch : null;
      this.events.emit("fault", { page });
      await ch?.sendMessage(Message.PAGE_REQUEST, page).catch(() => {}); // a lost request is answered by recovery
      const t = this.#timeouts;
      // a page that does not come in time means the connection is gone: drop it so recovery starts
      if (t && ch && (await withTimeout(arrived, t.pageRequest, TIMED_OUT, this.#clock)) === TIMED_OUT)
        ch.transport.close();
    }
    await arrived;
    if (this.#error) throw this.#error;
    this.#latencies.push((this.#clock.now() - t0) * 1000);
  }

  /**
   * Settles a migration left in doubt (receive() rejected with MigrationInDoubtError), as
   * the operator decides: "commit" keeps the received memory and runs the guest here,
   * "abort" discards it (refused once the guest ran here in post-copy: its writes are the
   * newest memory).
   */
  async resolve(decision: "commit" | "abort"): Promise<void> {
    if (this.#state !== "in-doubt")
      throw new PagewireError("NOT_IN_DOUBT", `the destination is ${this.#state}, not in doubt`);
    const mem = this.#memory!;
    if (decision === "commit") {
      await mem.commit?.();
      this.#state = "active";
      await this.options.onActivate?.();
      return;
    }
    if (this.#missing)
      throw new PagewireError(
        "RESOLVE_REFUSED",
        "the guest already ran here (post-copy): discarding would lose its writes",
      );
    await mem.discard?.();
    this.#state = "discarded";
  }

  /**
   * Receives a whole migration; resolves once the destination runs the guest. `signal`
   * cancels while receiving (CANCELLED: the memory is discarded and the source told, so it
   * runs the guest on); from the commit acknowledgement on it is ignored.
   */
  async receive({ signal }: { signal?: AbortSignal } = {}): Promise<DestinationResult> {
    const o = this.options;
    const t = this.#timeouts;
    const cancel = (this.#cancel = new Cancellation(signal, "receive"));
    this.#start = this.#clock.now();
    try {
      this.#k = o.kernel ?? (await loadKernel());
      let ch = this.#open(o.transport);
      // channel workers load their code while the handshake runs
      const wanted = this.#k.shared ? wantedChannels(o.channels) : 0;
      this.#spawned = wanted ? ChannelWorkers.spawn(this.#k, wanted) : null;
      this.#spawned?.catch(() => {});

      // handshake: version and page size are checked before any memory is created
      const challenge = await sendChallenge(ch);
      const hello = await cancel.race(readHello(ch, t?.handshake));
      let mem = typeof o.memory === "function" ? null : o.memory;
      if (!mem) {
        if (!Number.isInteger(hello.pageCount) || hello.pageCount <= 0 || hello.pageCount > 2 ** 30)
          throw new ProtocolError(
            "PROTOCOL_MESSAGE",
            `HELLO: page count ${hello.pageCount} is not a positive integer ≤ 2^30`,
          );
        mem = await (o.memory as (n: number) => DestinationMemory | Promise<DestinationMemory>)(hello.pageCount);
      }
      this.#memory = mem;
      if (hello.pageCount !== mem.pageCount)
        throw new ProtocolError(
          "PROTOCOL_MISMATCH",
          `source memory has ${hello.pageCount} pages, destination ${mem.pageCount}`,
        );
      this.#mode = hello.mode;
      this.#digest = new MemoryDigest(this.#k, mem.pageCount, digestSeed(hello.nonce));
      if (mem.zeroed) this.#digest.assumeZero();
      await this.#openChannels(hello, challenge);
      await this.#dropSpawned(); // workers spawned but not taken by this source
      const { session } = await answerHello(
        ch,
        hello,
        challenge,
        o.features ?? IMPLEMENTED_FEATURES,
        this.#dataChannels?.endpoints,
      );
      const applier = new PageApplier(this.#k, mem, { guests: o.guests, digest: this.#digest });
      this.events.emit("handshake", {
        mode: hello.mode,
        channels: this.#dataChannels?.endpoints.length ?? 0,
        pageCount: mem.pageCount,
      });

      for (;;) {
        try {
          return await this.#serve(ch, applier);
        } catch (err) {
          if (!isLinkFailure(err)) throw err;
          ch.transport.close();
          await this.#closeChannels(); // data channels are not resumed: the source aborts or is past them
          const next = await this.#recover(session, err);
          if (next === "active") return this.#result();
          ch = next;
        }
      }
    } catch (err) {
      throw await this.#fail(err);
    } finally {
      cancel.dispose();
      await this.#closeChannels();
      this.#digest?.dispose();
      this.#digest = null;
      for (const c of this.#channels) c.dispose();
      if (this.#state !== "in-doubt") {
        this.#missing?.dispose();
        this.#missing = null;
      }
    }
  }

  #open(transport: Transport): Channel {
    const ch = new Channel(this.#k, transport, this.options.key ?? null, {
      clock: this.#clock,
      sendTimeout: this.#timeouts?.frame,
    });
    this.#channels.push(ch);
    this.#ch = ch;
    return ch;
  }

  /** Starts the data channels the source asked for and this side accepts (see `channels`). */
  async #openChannels(hello: { nonce: string; channels?: number }, challenge: string): Promise<void> {
    const o = this.options;
    const mem = this.#memory;
    const asked = Number.isInteger(hello.channels) ? Math.max(0, Math.min(hello.channels!, MAX_CHANNELS)) : 0;
    const n = Math.min(asked, wantedChannels(o.channels));
    const spawned = this.#spawned;
    if (n === 0 || !spawned || !(mem instanceof WasmGuestMemory) || mem.kernel !== this.#k) return;
    this.#spawned = null;
    this.#dataChannels = await DestinationChannels.open(await spawned, {
      memory: mem,
      digest: this.#digest!,
      advertise: o.channels?.tcp?.advertise,
      listens: channelListens(o.channels!, n),
      session: { sourceNonce: hello.nonce, destinationNonce: challenge },
      key: o.key?.key ?? null,
      timeouts: this.#timeouts,
    });
  }

  /** Ends the data channels (all their pages are in, or the migration failed); keeps their counts. */
  async #closeChannels(): Promise<void> {
    await this.#dropSpawned();
    const dc = this.#dataChannels;
    if (!dc) return;
    this.#dataChannels = null;
    this.#channelPages = dc.pagesReceived;
    this.#channelBytes = dc.bytesReceived;
    await dc.close();
  }

  /** Stops workers spawned for channels the source did not ask for. */
  async #dropSpawned(): Promise<void> {
    const spawned = this.#spawned;
    this.#spawned = null;
    await ChannelWorkers.release(spawned);
  }

  /** The next frame on the control connection; a data channel's failure fails it too. */
  async #receive(ch: Channel, wait: number | undefined) {
    const next = this.#cancel.race(ch.receive(wait === undefined ? undefined : { seconds: wait, stage: this.#state }));
    if (!this.#dataChannels) return next;
    next.catch(() => {});
    return Promise.race([next, this.#dataChannels.failed]);
  }

  /** Frames on one connection until the guest runs here; link failures propagate to the caller. */
  async #serve(ch: Channel, applier: PageApplier): Promise<DestinationResult> {
    const o = this.options;
    const t = this.#timeouts;
    const mem = this.#memory!;
    for (;;) {
      const wait = this.#state === "prepared" ? t?.activation : t?.frame;
      const f = await this.#receive(ch, wait);
      if (!f) throw new ProtocolError("CONNECTION_CLOSED", `source closed the connection in state ${this.#state}`);
      switch (f.type) {
        case FrameType.PAGES: {
          const postcopy = this.#state === "postcopy";
          if (!postcopy) this.#need("receiving", f.type);
          if (postcopy) {
            // only missing pages may arrive now: anything else would overwrite the running guest
            for (const rec of readPageRecords(f.payload, mem.pageCount)) {
              if (!this.#missing!.get(rec.page))
                throw new ProtocolError(
                  "PROTOCOL_STAGE",
                  `post-copy page ${rec.page} (${rec.kind === RecordKind.RAW ? "raw" : "record"}) is not missing at the destination`,
                );
            }
          }
          const written = o.onPageWritten;
          this.#pages += applier.apply(
            f.payload,
            postcopy
              ? (p) => {
                  this.#arrived(p);
                  written?.(p);
                }
              : written,
          );
          this.#tick();
          break;
        }
        case FrameType.ROUND_END: {
          this.#need("receiving", f.type);
          const { round } = Message.ROUND_END.decode(f.payload);
          await this.#dataChannels?.synced(round); // the round's pages on the data channels are in too
          await o.onRound?.(round);
          this.#round = round;
          this.events.emit("round-end", { round });
          this.#tick(true);
          break;
        }
        case FrameType.PREAMBLE:
          this.#need("receiving", f.type);
          if (!o.onPreamble || this.#pages > 0)
            throw new ProtocolError(
              "PROTOCOL_STAGE",
              o.onPreamble ? "PREAMBLE after pages" : "PREAMBLE: this destination takes no preamble",
            );
          await o.onPreamble(Message.PREAMBLE.decode(f.payload).slice());
          break;
        case FrameType.DEVICE_STATE:
          this.#need("receiving", f.type);
          this.#deviceState = Message.DEVICE_STATE.decode(f.payload).slice();
          break;
        case FrameType.POSTCOPY_START:
          this.#need("receiving", f.type);
          await this.#closeChannels();
          this.#startPostcopy(Message.POSTCOPY_START.decode(f.payload));
          this.#cancel.disarm(); // the guest runs here now
          this.events.emit("postcopy", { missingPages: this.#missing!.count() });
          await mem.prepare?.({
            postcopy: true,
            missingPages: this.#missing!.count(),
            deviceState: this.#deviceState,
          });
          await o.onActivate?.();
          break;
        case FrameType.POSTCOPY_END:
          this.#need("postcopy", f.type);
          Message.POSTCOPY_END.decode(f.payload);
          if (this.#missing!.count() !== 0)
            throw new ProtocolError(
              "PROTOCOL_STAGE",
              `post-copy ended with ${this.#missing!.count()} pages still missing`,
            );
          break;
        case FrameType.COMPLETE:
          if (this.#state !== "postcopy") this.#need("receiving", f.type);
          await this.#closeChannels();
          await this.#verify(Message.COMPLETE.decode(f.payload), ch);
          break;
        case FrameType.ACTIVATE:
          Message.ACTIVATE.decode(f.payload);
          if (this.#acked === null || (this.#state !== "prepared" && this.#state !== "postcopy")) {
            throw new ProtocolError(
              "PROTOCOL_STAGE",
              `ACTIVATE in state ${this.#state} before the commit acknowledgement`,
            );
          }
          await this.#activate();
          await ch.sendMessage(Message.ACTIVATED, undefined).catch(() => {}); // the source resumes to ask if this is lost
          ch.transport.close();
          return this.#result();
        case FrameType.ABORT: {
          const a = Message.ABORT.decode(f.payload);
          throw new PagewireError(
            "SOURCE_ABORTED",
            `source aborted the migration: ${a.code}: ${a.message.slice(0, 200)}`,
          );
        }
        default:
          throw new ProtocolError(
            "PROTOCOL_STAGE",
            `unexpected ${frameTypeName(f.type)} frame in state ${this.#state}`,
          );
      }
    }
  }

  /** COMPLETE: checks the whole-memory digest, makes the memory durable, acknowledges (prepared). */
  async #verify(c: { digest: string; seed?: string }, ch: Channel): Promise<void> {
    const mem = this.#memory!;
    if (this.#state === "postcopy") {
      if (this.#missing!.count() !== 0)
        throw new ProtocolError("PROTOCOL_STAGE", `COMPLETE with ${this.#missing!.count()} pages still missing`);
    } else {
      if (c.seed !== undefined) {
        if (!/^[0-9a-f]{1,16}$/.test(c.seed))
          throw new ProtocolError(
            "PROTOCOL_MESSAGE",
            `COMPLETE: seed must be 1–16 hex digits, got '${String(c.seed).slice(0, 40)}'`,
          );
        const seed = BigInt("0x" + c.seed);
        if (seed !== this.#digest!.seed) {
          // the source's hashes use another seed: every page is hashed again with it
          this.#digest!.dispose();
          this.#digest = new MemoryDigest(this.#k, mem.pageCount, seed);
        }
      }
      this.#digest!.updateMissing(mem); // pages no record wrote; all of them with the scan's seed
    }
    const digest = this.#digest!.digest();
    if (digest !== c.digest)
      throw new PagewireError("DIGEST_MISMATCH", `whole-memory digest ${digest} differs from the source's ${c.digest}`);
    await mem.flush();
    if (this.#state === "receiving")
      await mem.prepare?.({ postcopy: false, missingPages: 0, deviceState: this.#deviceState });
    this.#cancel.throwIfCancelled();
    this.#acked = digest;
    if (this.#state === "receiving") this.#state = "prepared"; // from here nothing is discarded on this side's own account
    this.#cancel.disarm();
    const [p50, p99] = this.#latencyPercentiles();
    await ch.sendMessage(Message.COMMIT_ACK, { digest, faultLatencyP50Ms: p50, faultLatencyP99Ms: p99 });
    this.events.emit("prepared", { digest });
  }

  async #activate(): Promise<void> {
    const wasRunning = this.#state === "postcopy" || this.#state === "postcopy-paused";
    await this.#memory!.commit?.();
    this.#state = "active";
    if (!wasRunning) await this.options.onActivate?.();
    this.events.emit("activate", {});
    this.#tick(true);
  }

  /**
   * After a lost connection: waits for a source's RESUME on new connections within the
   * window. Returns the channel to go on with (post-copy recovery), or "active" when the
   * RESUME committed; throws when it aborted or no RESUME came.
   */
  async #recover(session: Session, cause: unknown): Promise<Channel | "active"> {
    const o = this.options;
    const t = this.#timeouts;
    if (this.#state === "postcopy") this.#state = "postcopy-paused";
    if (!o.accept) return this.#giveUp(cause);
    const deadline = this.#clock.now() + (t?.reconnectWindow ?? Infinity);
    for (;;) {
      const left = deadline - this.#clock.now();
      if (left <= 0) return this.#giveUp(cause);
      const next = o.accept();
      next.then(
        (tr) => left <= 0 && tr.close(),
        () => {},
      );
      const transport = Number.isFinite(left) ? await withTimeout(next, left, TIMED_OUT, this.#clock) : await next;
      if (transport === TIMED_OUT) return this.#giveUp(cause);
      const ch = this.#open(transport);
      let decision;
      try {
        decision = await readResume(ch, session, t?.handshake);
      } catch (err) {
        transport.close(); // not our source, or not in time: keep waiting
        if (isLinkFailure(err) || err instanceof ProtocolError) continue;
        throw err;
      }
      this.#recoveries++;
      this.events.emit("recovery", { count: this.#recoveries });
      const running = this.#state === "postcopy-paused";
      if (decision === "abort" || (decision === "postcopy" && this.#state === "receiving")) {
        if (running) throw new ProtocolError("PROTOCOL_STAGE", "RESUME abort after the post-copy switch");
        await ch.sendMessage(Message.RESUMED, { state: "discarded" }).catch(() => {});
        throw new PagewireError(
          "SOURCE_ABORTED",
          `source aborted the migration (told on a new connection): ${(cause as Error).message}`,
        );
      }
      if (decision === "commit") {
        if (this.#acked === null)
          throw new ProtocolError("PROTOCOL_STAGE", "RESUME commit without a commit acknowledgement");
        await this.#activate();
        await ch.sendMessage(Message.RESUMED, { state: "active" }).catch(() => {});
        ch.transport.close();
        return "active";
      }
      if (!running) throw new ProtocolError("PROTOCOL_STAGE", `RESUME postcopy in state ${this.#state}`);
      // post-copy recovery: the pages still missing go again
      const bits = new Uint8Array(
        this.#k.memory.buffer,
        this.#missing!.region.ptr,
        Math.ceil(this.#memory!.pageCount / 8),
      ).slice();
      await ch.sendMessage(Message.POSTCOPY_RECOVER, bits);
      this.#state = "postcopy";
      return ch;
    }
  }

  /** No RESUME: discard what was only being received; keep what is prepared or running. */
  #giveUp(cause: unknown): never {
    if (this.#state === "receiving") throw cause;
    const running = this.#state === "postcopy-paused";
    this.#state = "in-doubt";
    throw new MigrationInDoubtError(
      "destination",
      running ? "postcopy" : "unknown",
      running
        ? `connection lost in post-copy and the source did not come back within the reconnect window; the guest waits for ${this.#missing!.count()} pages: ${(cause as Error).message}`
        : `connection lost after the commit acknowledgement and the source did not come back within the reconnect window; the received memory is kept: ${(cause as Error).message}`,
      { cause },
    );
  }

  /** The end of a failed receive: what may be discarded is, and every waiting fault is released. */
  async #fail(err: unknown): Promise<unknown> {
    const e = err as { code?: string; message?: string };
    if (this.#state === "receiving" || this.#state === "prepared") {
      if (this.#ch && e?.code !== "SOURCE_ABORTED" && !isLinkFailure(err)) {
        await withTimeout(
          this.#ch.sendMessage(Message.ABORT, { code: e?.code ?? "ERROR", message: e?.message ?? String(err) }),
          0.2,
          0,
          this.#clock,
        ).catch(() => {});
      }
      this.#ch?.transport.close();
      this.#state = "discarded";
      await this.#memory?.discard?.();
      this.events.emit("abort", { code: e?.code ?? "ERROR", message: e?.message ?? String(err) });
    } else if (!(err instanceof MigrationInDoubtError)) {
      // running (post-copy) and failed for good: the guest's memory is the newest, never discarded
      this.#ch?.transport.close();
      this.#state = "in-doubt";
      err = new MigrationInDoubtError(
        "destination",
        "postcopy",
        `post-copy failed after the switch: ${e?.message ?? String(err)}`,
        { cause: err },
      );
    }
    if (err instanceof MigrationInDoubtError) this.events.emit("in-doubt", { code: err.code, message: err.message });
    this.#error = err;
    for (const list of this.#waiters.values()) for (const w of list) w();
    this.#waiters.clear();
    return err;
  }

  #result(): DestinationResult {
    const [p50, p99] = this.#latencyPercentiles();
    const postcopy = this.#missing !== null;
    return {
      committed: true,
      mode: this.#mode,
      deviceState: this.#deviceState,
      pagesReceived: this.#pages + this.#channelPages,
      bytesReceived: this.#channels.reduce((sum, c) => sum + c.transport.bytesReceived, 0) + this.#channelBytes,
      digest: this.#acked!,
      recoveries: this.#recoveries,
      ...(postcopy
        ? { postcopy: { requests: this.#latencies.length, faultLatencyP50Ms: p50, faultLatencyP99Ms: p99 } }
        : {}),
    };
  }

  #latencyPercentiles(): [number, number] {
    const lat = [...this.#latencies].sort((a, b) => a - b);
    const pct = (q: number) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(q * lat.length))] : NaN);
    return [pct(0.5), pct(0.99)];
  }

  #need(state: DestinationState, type: number): void {
    if (this.#state !== state)
      throw new ProtocolError("PROTOCOL_STAGE", `${frameTypeName(type)} frame in state ${this.#state}`);
  }

  #startPostcopy(bits: Uint8Array): void {
    const mem = this.#memory!;
    if (bits.length !== Math.ceil(mem.pageCount / 8))
      throw new ProtocolError(
        "PROTOCOL_MESSAGE",
        `POSTCOPY_START bitmap of ${bits.length} bytes, want ${Math.ceil(mem.pageCount / 8)}`,
      );
    const missing = new DirtyBitmap(this.#k, mem.pageCount);
    for (let p = 0; p < mem.pageCount; p++) if ((bits[p >>> 3] >>> (p & 7)) & 1) missing.set(p);
    // pages present now are final: hash them before the guest can write them
    this.#digest!.updateMissing(mem, (p) => !missing.get(p));
    this.#missing = missing;
    this.#state = "postcopy";
  }

  #arrived(page: number): void {
    this.#missing!.clear(page);
    const list = this.#waiters.get(page);
    if (list) {
      this.#waiters.delete(page);
      for (const w of list) w();
    }
  }
}

export { MigrationTimeoutError };
