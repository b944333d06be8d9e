// The migration destination: the receiving half of source.ts's diagram.
//
//   stage      accepts                                   then
//   hello      HELLO                                     welcome → pages
//   pages      PAGES, ROUND_END, DEVICE_STATE,            COMPLETE → verify digest → COMMIT_ACK → ACTIVATE
//              POSTCOPY_START → postcopy
//   postcopy   PAGES (missing pages only), POSTCOPY_END   COMPLETE → verify → COMMIT_ACK → ACTIVATE
//
// Anything else in a stage is a ProtocolError. Until the commit acknowledgement is sent,
// the received state is provisional: on any failure the destination sends ABORT (best
// effort), calls memory.discard(), and receive() rejects.
import { PageApplier } from "../codec/page-applier.js";
import { readPageRecords, RecordKind } from "../wire/page-record.js";
import { PagewireError } from "../errors.js";
import { DirtyBitmap } from "../kernel/dirty-bitmap.js";
import { PAGE_SIZE, type Kernel } from "../kernel/kernel.js";
import { loadKernel } from "../kernel/loader.js";
import type { GuestMemory } from "../memory/guest-memory.js";
import { realClock, withTimeout, type Clock } from "../util/clock.js";
import { FrameType, frameTypeName, type FrameKey } from "../wire/frame.js";
import type { Transport } from "../transport/transport.js";
import { Channel } from "./channel.js";
import { digestSeed, MemoryDigest } from "./digest.js";
import { ALL_FEATURES, answerHello, readHello } from "./handshake.js";
import { Message, ProtocolError, type Feature } from "../wire/messages.js";

/** Destination memory; commit/discard make a file destination transactional (FileMemory). */
export type DestinationMemory = GuestMemory & { commit?(): Promise<void>; discard?(): Promise<void> };

export interface MigrationDestinationOptions {
  /** The memory to receive into, or a factory called with the source's page count after the handshake's HELLO. */
  memory: DestinationMemory | ((pageCount: number) => DestinationMemory | Promise<DestinationMemory>);
  transport: Transport;
  kernel?: Kernel;
  key?: FrameKey;
  /** Features this side accepts (default: all it implements). */
  features?: Feature[];
  /** Other guests' memories here, by guest id, for gang-migration dedup references. */
  guests?: ReadonlyMap<number, GuestMemory>;
  clock?: Clock;
  /** Called once the destination guest may run: at POSTCOPY_START, or at commit otherwise. */
  onActivate?: () => void | Promise<void>;
}

/** What the destination received, after the commit. */
export interface DestinationResult {
  committed: true;
  mode: string;
  deviceState: Uint8Array;
  pagesReceived: number;
  bytesReceived: number;
  digest: string;
  postcopy?: { requests: number; faultLatencyP50Ms: number; faultLatencyP99Ms: number };
}


export class MigrationDestination {
  readonly options: MigrationDestinationOptions;
  #clock: Clock;
  #ch!: Channel;
  #k!: Kernel;
  #stage: "hello" | "pages" | "postcopy" | "done" = "hello";
  #missing: DirtyBitmap | null = null;
  #waiters = new Map<number, Array<() => void>>();
  #latencies: number[] = [];
  #digest!: MemoryDigest;
  #error: unknown = null;
  #memory: DestinationMemory | null = null;

  constructor(options: MigrationDestinationOptions) {
    this.options = options;
    this.#clock = options.clock ?? realClock;
  }

  /** True once the destination guest may run (after the post-copy switch or the commit). */
  get running(): boolean {
    return this.#stage === "postcopy" || this.#stage === "done";
  }

  /**
   * Post-copy: resolves once `page` holds its migrated content, requesting it from the
   * source if it is still missing. The destination guest calls this on a fault.
   */
  async ensurePage(page: number): Promise<void> {
    if (this.#error) throw this.#error;
    if (!this.#missing || !this.#missing.get(page)) return;
    const t0 = this.#clock.now();
    let list = this.#waiters.get(page);
    const first = !list;
    if (!list) this.#waiters.set(page, (list = []));
    const arrived = new Promise<void>((resolve) => list!.push(resolve));
    if (first) await this.#ch.sendMessage(Message.PAGE_REQUEST, page);
    await arrived;
    if (this.#error) throw this.#error;
    this.#latencies.push((this.#clock.now() - t0) * 1000);
  }

  /** Receives a whole migration; resolves after the commit acknowledgement was sent. */
  async receive(): Promise<DestinationResult> {
    const o = this.options;
    let mem: DestinationMemory | null = typeof o.memory === "function" ? null : o.memory;
    let mode = "precopy";
    let deviceState = new Uint8Array(0);
    let pages = 0;
    try {
      this.#k = o.kernel ?? (await loadKernel());
      this.#ch = new Channel(this.#k, o.transport, o.key ?? null);

      // handshake: version and page size are checked before any memory is created
      const hello = await readHello(this.#ch);
      if (!mem) {
        if (!Number.isInteger(hello.pageCount) || hello.pageCount <= 0 || hello.pageCount > 2 ** 30) throw new ProtocolError("PROTOCOL_MESSAGE", `HELLO: page count ${hello.pageCount} is not a positive integer ≤ 2^30`);
        mem = await (o.memory as (n: number) => DestinationMemory | Promise<DestinationMemory>)(hello.pageCount);
      }
      this.#memory = mem;
      if (hello.pageCount !== mem.pageCount) throw new ProtocolError("PROTOCOL_MISMATCH", `source memory has ${hello.pageCount} pages, destination ${mem.pageCount}`);
      mode = hello.mode;
      this.#digest = new MemoryDigest(this.#k, mem.pageCount, digestSeed(hello.nonce));
      await answerHello(this.#ch, hello, o.features ?? ALL_FEATURES);
      this.#stage = "pages";
      const applier = new PageApplier(this.#k, mem, { guests: o.guests });

      for (;;) {
        const f = await this.#ch.receive();
        if (!f) throw new ProtocolError("CONNECTION_CLOSED", `source closed the connection in stage ${this.#stage}`);
        switch (f.type) {
          case FrameType.PAGES:
            if (this.#is("postcopy")) {
              // only missing pages may arrive now: anything else would overwrite the running guest
              for (const rec of readPageRecords(f.payload, mem.pageCount)) {
                if (!this.#missing!.get(rec.page)) throw new ProtocolError("PROTOCOL_STAGE", `post-copy page ${rec.page} (${rec.kind === RecordKind.RAW ? "raw" : "record"}) is not missing at the destination`);
              }
            }
            pages += applier.apply(f.payload, this.#is("postcopy") ? (p) => this.#arrived(p) : undefined);
            break;
          case FrameType.ROUND_END:
            this.#needStage("pages", f.type);
            break;
          case FrameType.DEVICE_STATE:
            this.#needStage("pages", f.type);
            deviceState = f.payload.slice();
            break;
          case FrameType.POSTCOPY_START:
            this.#needStage("pages", f.type);
            this.#startPostcopy(f.payload);
            await o.onActivate?.();
            break;
          case FrameType.POSTCOPY_END:
            this.#needStage("postcopy", f.type);
            if (this.#missing!.count() !== 0) throw new ProtocolError("PROTOCOL_STAGE", `post-copy ended with ${this.#missing!.count()} pages still missing`);
            break;
          case FrameType.COMPLETE: {
            const c = Message.COMPLETE.decode(f.payload);
            if (this.#is("postcopy")) {
              if (this.#missing!.count() !== 0) throw new ProtocolError("PROTOCOL_STAGE", `COMPLETE with ${this.#missing!.count()} pages still missing`);
            } else {
              if (c.seed !== undefined) {
                if (!/^[0-9a-f]{1,16}$/.test(c.seed)) throw new ProtocolError("PROTOCOL_MESSAGE", `COMPLETE: seed must be 1–16 hex digits, got '${String(c.seed).slice(0, 40)}'`);
                this.#digest.dispose();
                this.#digest = new MemoryDigest(this.#k, mem.pageCount, BigInt("0x" + c.seed));
              }
              this.#digest.updateFrom(mem);
            }
            const digest = this.#digest.digest();
            if (digest !== c.digest) throw new PagewireError("DIGEST_MISMATCH", `whole-memory digest ${digest} differs from the source's ${c.digest}`);
            await mem.flush();
            const lat = [...this.#latencies].sort((a, b) => a - b);
            const pct = (q: number) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(q * lat.length))] : NaN);
            await this.#ch.sendMessage(Message.COMMIT_ACK, { digest, faultLatencyP50Ms: pct(0.5), faultLatencyP99Ms: pct(0.99) });
            // provisional until the source confirms it accepted the acknowledgement
            await this.#ch.expect(FrameType.ACTIVATE, "commit");
            await mem.commit?.();
            const wasPostcopy = this.#is("postcopy");
            this.#stage = "done";
            if (!wasPostcopy) await o.onActivate?.();
            o.transport.close();
            return {
              committed: true, mode, deviceState, pagesReceived: pages, bytesReceived: o.transport.bytesReceived, digest,
              ...(wasPostcopy ? { postcopy: { requests: this.#latencies.length, faultLatencyP50Ms: pct(0.5), faultLatencyP99Ms: pct(0.99) } } : {}),
            };
          }
          case FrameType.ABORT: {
            const a = Message.ABORT.decode(f.payload);
            throw new PagewireError("SOURCE_ABORTED", `source aborted the migration: ${a.code}: ${a.message.slice(0, 200)}`);
          }
          default:
            throw new ProtocolError("PROTOCOL_STAGE", `unexpected ${frameTypeName(f.type)} frame in stage ${this.#stage}`);
        }
      }
    } catch (err) {
      this.#error = err;
      for (const list of this.#waiters.values()) for (const w of list) w();
      const e = err as { code?: string; message?: string };
      if (this.#ch && e?.code !== "SOURCE_ABORTED") {
        try {
          await withTimeout(this.#ch.sendMessage(Message.ABORT, { code: e?.code ?? "ERROR", message: e?.message ?? String(err) }), 0.2, 0, this.#clock);
        } catch {
          // the connection may be what failed
        }
      }
      o.transport.close();
      await mem?.discard?.();
      throw err;
    } finally {
      this.#missing?.dispose();
      this.#missing = null;
      this.#digest?.dispose();
      this.#ch?.dispose();
    }
  }

  #is(stage: string): boolean {
    return this.#stage === stage;
  }

  #needStage(stage: string, type: number): void {
    if (this.#stage !== stage) throw new ProtocolError("PROTOCOL_STAGE", `${frameTypeName(type)} frame in stage ${this.#stage}`);
  }

  #startPostcopy(bits: Uint8Array): void {
    const mem = this.#memory!;
    if (bits.length !== Math.ceil(mem.pageCount / 8)) throw new ProtocolError("PROTOCOL_MESSAGE", `POSTCOPY_START bitmap of ${bits.length} bytes, want ${Math.ceil(mem.pageCount / 8)}`);
    const missing = new DirtyBitmap(this.#k, mem.pageCount);
    for (let p = 0; p < mem.pageCount; p++) if ((bits[p >>> 3] >>> (p & 7)) & 1) missing.set(p);
    // pages present now are final: hash them before the guest can write them
    this.#digest.updateFrom(mem, (p) => !missing.get(p));
    this.#missing = missing;
    this.#stage = "postcopy";
  }

  #arrived(page: number): void {
    const view = new Uint8Array(PAGE_SIZE);
    this.#memory!.readPages([page], view);
    this.#digest.update(page, view);
    this.#missing!.clear(page);
    const list = this.#waiters.get(page);
    if (list) {
      this.#waiters.delete(page);
      for (const w of list) w();
    }
  }
}
