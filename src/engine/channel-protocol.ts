// What the main thread and a data channel's Worker say to each other (structured clones;
// the wire protocol between source and destination is in wire/messages.ts).
//
//   main                                  channel worker
//   init {role, arena, ram, session, …} ─►  attaches its own kernel to the shared memory
//     destination:       ◄── listening {port?}   then JOIN on its connection ◄── joined
//     source:            ◄── ready               (its connection joined the session)
//   round {pages} (source) ────────────►   PAGES* SYNC{round} on its connection
//                        ◄── done {counts, bytes}
//                        ◄── synced {round} (destination: every page of the round applied)
//   close ──────────────────────────────►  ◄── closed {stats}
//                        ◄── error {code, message, link}   at any time; the worker stops
import type { CodecOptions } from "../codec/encode-pipeline.js";
import type { EncodeCounts } from "../codec/codecs.js";
import type { KernelArena } from "../kernel/kernel.js";
import type { ChannelDial, ChannelListen } from "../transport/channel-endpoints.js";
import type { Session } from "./handshake.js";
import type { MigrationTimeouts } from "./ownership.js";

interface ChannelInitBase {
  op: "init";
  /** This channel's number and how many there are (striping: channel-stripes.ts). */
  index: number;
  count: number;
  /** The worker's own region of the main kernel's shared memory (its kernel instance lives there). */
  arena: KernelArena;
  /** Byte offset of guest RAM in that memory, and its pages. */
  ram: number;
  pageCount: number;
  session: Session;
  /** Pre-shared key bytes (frames carry an HMAC), or null. */
  key: Uint8Array | null;
  timeouts: MigrationTimeouts | null;
}

export interface SourceChannelInit extends ChannelInitBase {
  role: "source";
  dial: ChannelDial;
  codecs: Omit<CodecOptions, "dedupIndex" | "hashSeed">;
  /** The migration's hash seed (hex). */
  hashSeed: string;
  batchPages: number;
  frameBytes: number;
  /** This channel's share of the bandwidth limit, bytes/s (Infinity: none). */
  rate: number;
}

export interface DestinationChannelInit extends ChannelInitBase {
  role: "destination";
  listen: ChannelListen;
  /**
   * The whole-memory digest the channel keeps as pages land (engine/digest.ts): its seed
   * (hex) and the byte offsets of its per-page hash table and hashed-pages bitmap in the
   * shared memory. Stripes are 512 pages, so no two channels write one bitmap word.
   */
  digest: { seed: string; table: number; hashed: number };
}

export type ToChannel =
  | SourceChannelInit
  | DestinationChannelInit
  | { op: "round"; round: number; lastStage: boolean; sendAll: boolean; pages: Uint32Array }
  | { op: "rate"; rate: number }
  | { op: "close" };

export type FromChannel =
  | { op: "listening"; port?: number }
  | { op: "ready" }
  | { op: "joined" }
  | { op: "done"; round: number; counts: EncodeCounts; bytes: number }
  | { op: "progress"; round: number; pages: number; bytes: number }
  | { op: "synced"; round: number; pages: number; bytes: number }
  | { op: "closed"; stats: Record<string, number>; dedup: Record<string, number> | null }
  | { op: "error"; code: string; message: string; link: boolean };
