// The source's data channels (main thread): each round's pages are split by stripe
// (channel-stripes.ts) and sent by the channel Workers in parallel, each on its own
// connection; the round is over when every channel has sent its SYNC.
import { addCounts, emptyCounts, type EncodeCounts } from "../codec/codecs.js";
import type { CodecOptions } from "../codec/encode-pipeline.js";
import { PAGE_SIZE } from "../kernel/kernel.js";
import type { WasmGuestMemory } from "../memory/wasm-guest-memory.js";
import type { ChannelDial } from "../transport/channel-endpoints.js";
import { splitByChannel } from "./channel-stripes.js";
import { pageSenderKernelBytes } from "./page-sender.js";
import { type ChannelWorkers, commonInit, within } from "./channel-workers.js";
import type { Session } from "./handshake.js";
import type { MigrationTimeouts } from "./ownership.js";

export interface SourceChannelsOptions {
  memory: WasmGuestMemory;
  /** One per channel. */
  dials: ChannelDial[];
  session: Session;
  key: Uint8Array | null;
  timeouts: MigrationTimeouts | null;
  codecs: Omit<CodecOptions, "dedupIndex" | "hashSeed"> & { xbzrleCacheBytes: number };
  hashSeed: bigint;
  batchPages: number;
  frameBytes: number;
  /** The whole bandwidth limit, bytes/s; each channel gets an equal share. */
  rate: number;
}

export class SourceChannels {
  readonly #pool: ChannelWorkers;
  /** Bytes of the rounds finished. */
  bytesSent = 0;
  /** The current round's pages and bytes per channel, as their live reports say. */
  #live: { round: number; pages: number; bytes: number }[] = [];
  /** Called with the current round's pages encoded so far on all channels. */
  onRoundProgress: ((pages: number) => void) | null = null;

  private constructor(pool: ChannelWorkers) {
    this.#pool = pool;
    pool.onProgress = (i, report) => {
      this.#live[i] = report;
      this.onRoundProgress?.(this.#live.reduce((sum, l) => sum + (l?.pages ?? 0), 0));
    };
  }

  /** Bytes sent so far, the current round's included. */
  get liveBytes(): number {
    return this.bytesSent + this.#live.reduce((sum, l) => sum + (l?.bytes ?? 0), 0);
  }

  get count(): number {
    return this.#pool.count;
  }

  /** Gives `workers` (spawned early) their channels; resolves once every channel joined the session. */
  static async open(pool: ChannelWorkers, o: SourceChannelsOptions): Promise<SourceChannels> {
    const n = o.dials.length;
    const cache = Math.floor(o.codecs.xbzrleCacheBytes / n);
    // each channel's dedup index covers its share of the pages: 4 entries per page, 64 KiB to 16 MiB
    const dedup = Math.min(16 << 20, Math.max(64 << 10, Math.ceil(o.memory.pageCount / n) * 128));
    // the worker's pipeline (XBZRLE cache share, dedup index, unchanged-filter hashes, its
    // snapshot and scratch), the frame buffers its sender fills and lends to the socket, slack
    const arenaBytes =
      cache +
      dedup +
      o.memory.pageCount * 24 +
      (o.batchPages + 1) * PAGE_SIZE * 3 +
      pageSenderKernelBytes(o.frameBytes, o.batchPages) +
      (16 << 20);
    await pool.init(n, arenaBytes, (index, arena) => {
      const dial = o.dials[index];
      return {
        message: {
          ...commonInit(o, index, n, arena),
          role: "source",
          dial,
          codecs: { ...o.codecs, xbzrleCacheBytes: cache, dedupIndexBytes: dedup },
          hashSeed: o.hashSeed.toString(16),
          batchPages: o.batchPages,
          frameBytes: o.frameBytes,
          rate: o.rate / n,
        },
        transfer: dial.kind === "port" ? [dial.port] : [],
      };
    });
    const channels = new SourceChannels(pool);
    try {
      await within(pool.all("ready"), o.timeouts?.handshake, "TIMEOUT_HANDSHAKE", "data channels did not join");
    } catch (err) {
      await pool.close(0);
      throw err;
    }
    return channels;
  }

  /** Sends one round's pages (in `list` order within each channel); resolves with its counts and bytes. */
  async sendRound(
    list: Uint32Array,
    round: number,
    lastStage: boolean,
    sendAll: boolean,
  ): Promise<{ counts: EncodeCounts; bytes: number }> {
    const parts = splitByChannel(list, this.count);
    parts.forEach((pages, i) => this.#pool.post(i, { op: "round", round, lastStage, sendAll, pages }, [pages.buffer]));
    this.#live = [];
    const done = await this.#pool.all("done");
    this.#live = [];
    const counts = emptyCounts();
    let bytes = 0;
    for (const d of done) {
      addCounts(counts, d.counts);
      bytes += d.bytes;
    }
    this.bytesSent += bytes;
    return { counts, bytes };
  }

  /** A new bandwidth limit, bytes/s, shared equally. */
  setRate(rate: number): void {
    for (let i = 0; i < this.count; i++) this.#pool.post(i, { op: "rate", rate: rate / this.count });
  }

  throwIfFailed(): void {
    this.#pool.throwIfFailed();
  }

  /** Closes every channel; returns the XBZRLE and dedup counters summed over the channels. */
  async close(): Promise<{ stats: Record<string, number>; dedup: Record<string, number> | null }> {
    const reports = await this.#pool.close();
    return {
      stats: sumStats(reports.map((r) => r.stats)),
      dedup: reports.some((r) => r.dedup) ? sumStats(reports.map((r) => r.dedup ?? {})) : null,
    };
  }
}

/** Counters add up; rates (names ending in "rate") are averaged over the channels that have them. */
function sumStats(list: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  const seen: Record<string, number> = {};
  for (const s of list)
    for (const [k, v] of Object.entries(s)) {
      out[k] = (out[k] ?? 0) + v;
      seen[k] = (seen[k] ?? 0) + 1;
    }
  for (const k of Object.keys(out)) if (k.endsWith("rate")) out[k] /= seen[k];
  return out;
}
