// The source's data path for one batch of pages: encode them into page records in a frame
// buffer in kernel memory (guest RAM in kernel memory is read once, straight into the
// frame; other memories through the pipeline's snapshot, which a content-based dirty log
// sees), and send full frames over the channel (or hand a round to the data channels).
//
//   guest memory ──EncodePipeline.encodeMemory──► PageRecordWriter ──► Channel (PAGES)
import { addCounts, emptyCounts, type EncodeCounts } from "../codec/codecs.js";
import type { EncodePipeline } from "../codec/encode-pipeline.js";
import type { DirtyBitmap } from "../kernel/dirty-bitmap.js";
import { PAGE_SIZE, type Kernel } from "../kernel/kernel.js";
import type { DirtyLog, GuestMemory } from "../memory/guest-memory.js";
import type { Clock } from "../util/clock.js";
import { FRAME_HEADER_BYTES, FRAME_TRAILER_ROOM } from "../wire/frame.js";
import { Message } from "../wire/messages.js";
import { PageRecordWriter } from "../wire/page-record.js";
import type { Channel } from "./channel.js";
import type { SourceChannels } from "./source-channels.js";
import { roundRow } from "./metrics.js";
import type { MigrationReport } from "./report.js";

export interface PageSenderOptions {
  kernel: Kernel;
  memory: GuestMemory;
  dirtyLog?: DirtyLog;
  /** The connection to send on (it changes when a lost one is replaced). */
  channel: () => Channel;
  pipeline: EncodePipeline;
  report: MigrationReport;
  clock: Clock;
  /** Payload bytes per PAGES frame. */
  frameBytes: number;
  /** Checked after every batch: throws when the destination failed meanwhile. */
  checkRemote(): void;
  /** Data channels, while open: a round's pages go on them instead of `channel` (ROUND_END still goes on `channel`). */
  channels?: () => SourceChannels | null;
  /** After each encoded batch, with its page count (live progress). */
  onPages?(pages: number): void;
  /** Wraps the wait for a round on the data channels (the caller's cancellation). */
  race?<T>(wait: Promise<T>): Promise<T>;
}

/** Frame buffers a sender may have on the wire at once before it waits for one to come back. */
const MAX_LENT_FRAMES = 8;

/** Bytes of one record writer's kernel buffer: a full frame plus one more batch of raw pages (it never grows). */
function writerBytes(frameBytes: number, batchPages: number): number {
  return frameBytes + batchPages * (PAGE_SIZE + 8) + 64;
}

/** The most kernel memory a PageSender holds in frame buffers (the one being filled and those lent), with allocator slack. */
export function pageSenderKernelBytes(frameBytes: number, batchPages: number): number {
  return (MAX_LENT_FRAMES + 1) * (writerBytes(frameBytes, batchPages) + FRAME_HEADER_BYTES + FRAME_TRAILER_ROOM + 128);
}

export class PageSender {
  readonly #o: PageSenderOptions;
  /** The writer being filled. */
  #writer: PageRecordWriter;
  /** Writers whose frames are back from the transport, ready for the next one. */
  readonly #free: PageRecordWriter[] = [];
  /** Writers whose frames the transport still reads (lent: see Channel.sendInPlace). */
  readonly #lent = new Set<PageRecordWriter>();
  /** Called when a lent writer comes back (a flush waiting for a free buffer). */
  #onReturn: (() => void) | null = null;
  #disposed = false;

  constructor(o: PageSenderOptions) {
    this.#o = o;
    this.#writer = this.#newWriter();
  }

  #newWriter(): PageRecordWriter {
    return new PageRecordWriter(writerBytes(this.#o.frameBytes, this.#o.pipeline.batchPages), {
      headroom: FRAME_HEADER_BYTES,
      tailroom: FRAME_TRAILER_ROOM,
      kernel: this.#o.kernel,
    });
  }

  /** Sends the pages of `pages` (in `order` when given) as one round and adds its row to the report; returns its bytes. */
  async sendRound(
    pages: DirtyBitmap,
    row: { round: number; phase: string; dirtied: number; deferred: number },
    order?: Uint32Array,
    skip?: (batch: Uint32Array) => Uint32Array,
  ): Promise<number> {
    const t0 = this.#o.clock.now();
    const bytesBefore = this.#o.channel().bytesSent;
    let counts = emptyCounts();
    let channelBytes = 0;
    let list = order ?? pages.collect();
    const planned = list.length;
    let going = planned; // pages of the plan actually sent (to_skip may hold some back)
    const lastStage = row.phase !== "precopy";
    const channels = this.#o.channels?.() ?? null;
    if (channels) {
      if (skip) list = skip(list); // the data channels take the round at once: one look at to_skip
      going = list.length;
      const sent = channels.sendRound(list, row.round, lastStage, false);
      ({ counts, bytes: channelBytes } = await (this.#o.race ? this.#o.race(sent) : sent));
      this.#o.report.addBatchCounts(counts);
      this.#o.checkRemote();
    } else {
      this.begin(row.round, lastStage);
      const batch = this.#o.pipeline.batchPages;
      going = 0;
      for (let i = 0; i < list.length; i += batch) {
        let chunk = list.subarray(i, Math.min(i + batch, list.length));
        if (skip) chunk = skip(chunk); // pages re-dirtied since the harvest wait for the next round
        going += chunk.length;
        if (chunk.length) await this.sendBatch(chunk, counts);
        if (skip) await this.flush(); // out before the next look at to_skip, as Xen writes each batch
        this.#o.checkRemote();
      }
      await this.flush();
    }
    const heldBack = planned - going;
    await this.#o.channel().sendMessage(Message.ROUND_END, { round: row.round, pages: going });
    const bytes = this.#o.channel().bytesSent - bytesBefore + channelBytes;
    this.#o.report.rounds.push(
      roundRow(
        { ...row, deferred: row.deferred + heldBack, sent: going - counts.skipped },
        counts,
        bytes,
        this.#o.clock.now() - t0,
      ),
    );
    return bytes;
  }

  /**
   * Starts a round in the pipeline and the record writer. `lastStage`: the stop-and-copy or
   * post-copy phase (XBZRLE's last stage); `sendAll`: no page may be skipped as unchanged
   * (post-copy: the destination misses them).
   */
  begin(round: number, lastStage: boolean, sendAll = false): void {
    this.#o.pipeline.beginRound(round, lastStage, sendAll);
    this.#writer.begin(round);
  }

  /** Encodes `pages` (in pipeline-sized batches) and sends each frame once it is full. */
  async sendBatch(pages: Uint32Array, roundCounts: EncodeCounts): Promise<void> {
    const { memory, dirtyLog, pipeline, report } = this.#o;
    const batch = pipeline.batchPages;
    for (let i = 0; i < pages.length; i += batch) {
      const chunk = pages.subarray(i, Math.min(i + batch, pages.length));
      const c = emptyCounts();
      // guest RAM in kernel memory is read once, into the frame; a content-based dirty log sees the snapshot
      pipeline.encodeMemory(memory, chunk, chunk.length, this.#writer, c, dirtyLog);
      report.addBatchCounts(c);
      addCounts(roundCounts, c);
      this.#o.onPages?.(chunk.length);
      if (this.#writer.size >= this.#o.frameBytes) await this.flush();
    }
  }

  /**
   * Sends the records written so far as one PAGES frame. The frame leaves from the
   * writer's kernel buffer when the channel can lend it to the transport; the next frame
   * is then built in another writer (up to MAX_LENT_FRAMES on the wire, then this waits
   * for the first to come back).
   */
  async flush(): Promise<void> {
    const w = this.#writer;
    if (w.count === 0) return;
    const channel = this.#o.channel();
    if (!channel.lendsKernelFrames) {
      // copied out before the send awaits: the writer goes on at once
      const { buffer, length } = w.take();
      w.begin(this.#o.report.rounds.length);
      await channel.sendInPlace(Message.PAGES.type, buffer, length);
      return;
    }
    // the next writer first: making one may grow kernel memory, and take() then sees it
    this.#lent.add(w);
    const next = await this.#nextWriter();
    const { buffer, length } = w.take();
    next.begin(this.#o.report.rounds.length);
    this.#writer = next;
    await channel.sendInPlace(Message.PAGES.type, buffer, length, () => this.#giveBack(w));
  }

  /** A writer no frame of which is on the wire: a returned one, a new one, or the first to return. */
  async #nextWriter(): Promise<PageRecordWriter> {
    for (;;) {
      const w = this.#free.pop();
      if (w) return w;
      if (this.#lent.size < MAX_LENT_FRAMES) return this.#newWriter();
      await new Promise<void>((resolve) => (this.#onReturn = resolve));
    }
  }

  #giveBack(w: PageRecordWriter): void {
    if (!this.#lent.delete(w)) return;
    if (this.#disposed) w.dispose();
    else this.#free.push(w);
    const wake = this.#onReturn;
    this.#onReturn = null;
    wake?.();
  }

  /** Frees the writers' kernel buffers (a lent one once the transport gives it back). */
  dispose(): void {
    this.#disposed = true;
    this.#writer.dispose();
    for (const w of this.#free) w.dispose();
    this.#free.length = 0;
  }
}
