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

export class PageSender {
  readonly #o: PageSenderOptions;
  readonly #writer: PageRecordWriter;

  constructor(o: PageSenderOptions) {
    this.#o = o;
    // room for a full frame plus one more batch of raw pages: the buffer never grows
    const bytes = o.frameBytes + o.pipeline.batchPages * (PAGE_SIZE + 8) + 64;
    this.#writer = new PageRecordWriter(bytes, {
      headroom: FRAME_HEADER_BYTES,
      tailroom: FRAME_TRAILER_ROOM,
      kernel: o.kernel,
    });
  }

  /** Sends the pages of `pages` (in `order` when given) as one round and adds its row to the report; returns its bytes. */
  async sendRound(
    pages: DirtyBitmap,
    row: { round: number; phase: string; dirtied: number; deferred: number },
    order?: Uint32Array,
  ): Promise<number> {
    const t0 = this.#o.clock.now();
    const bytesBefore = this.#o.channel().bytesSent;
    let counts = emptyCounts();
    let channelBytes = 0;
    const list = order ?? pages.collect();
    const lastStage = row.phase !== "precopy";
    const channels = this.#o.channels?.() ?? null;
    if (channels) {
      const sent = channels.sendRound(list, row.round, lastStage, false);
      ({ counts, bytes: channelBytes } = await (this.#o.race ? this.#o.race(sent) : sent));
      this.#o.report.addBatchCounts(counts);
      this.#o.checkRemote();
    } else {
      this.begin(row.round, lastStage);
      const batch = this.#o.pipeline.batchPages;
      for (let i = 0; i < list.length; i += batch) {
        await this.sendBatch(list.subarray(i, Math.min(i + batch, list.length)), counts);
        this.#o.checkRemote();
      }
      await this.flush();
    }
    await this.#o.channel().sendMessage(Message.ROUND_END, { round: row.round, pages: list.length });
    const bytes = this.#o.channel().bytesSent - bytesBefore + channelBytes;
    this.#o.report.rounds.push(
      roundRow({ ...row, sent: list.length - counts.skipped }, counts, bytes, this.#o.clock.now() - t0),
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

  /** Sends the records written so far as one PAGES frame. */
  async flush(): Promise<void> {
    if (this.#writer.count === 0) return;
    const { buffer, length } = this.#writer.take();
    this.#writer.begin(this.#o.report.rounds.length);
    await this.#o.channel().sendInPlace(Message.PAGES.type, buffer, length);
  }

  dispose(): void {
    this.#writer.dispose();
  }
}
