// The destination's data channels (main thread): a channel Worker per accepted channel,
// each listening for the connection that joins the session as that channel and applying
// its pages straight into guest RAM. The control connection's ROUND_END for round r is
// acted on once every channel has synced r (all its pages of r are in memory).
import type { WasmGuestMemory } from "../memory/wasm-guest-memory.js";
import type { ChannelListen } from "../transport/channel-endpoints.js";
import { ProtocolError, type ChannelEndpoint } from "../wire/messages.js";
import { type ChannelWorkers, commonInit, within } from "./channel-workers.js";
import type { MemoryDigest } from "./digest.js";
import type { Session } from "./handshake.js";
import type { MigrationTimeouts } from "./ownership.js";

export interface DestinationChannelsOptions {
  memory: WasmGuestMemory;
  /** The digest the channels keep up to date as they apply pages. */
  digest: MemoryDigest;
  /** The port the source is to use for a channel listening on `port` (default: that port). */
  advertise?: (port: number, channel: number) => number | Promise<number>;
  /** One per channel. */
  listens: ChannelListen[];
  session: Session;
  key: Uint8Array | null;
  timeouts: MigrationTimeouts | null;
}

/** Bytes of a destination channel's arena: its receive buffer (a frame of up to 8 MiB) and the applier's. */
const ARENA_BYTES = 24 << 20;

export class DestinationChannels {
  readonly #pool: ChannelWorkers;
  readonly #timeouts: MigrationTimeouts | null;
  /** Where the source reaches each channel (WELCOME). */
  readonly endpoints: ChannelEndpoint[];
  #joined: Promise<unknown>;
  readonly #pages: number[] = [];
  readonly #bytes: number[] = [];

  private constructor(pool: ChannelWorkers, endpoints: ChannelEndpoint[], timeouts: MigrationTimeouts | null) {
    this.#pool = pool;
    this.endpoints = endpoints;
    this.#timeouts = timeouts;
    this.#joined = pool.all("joined");
    this.#joined.catch(() => {});
  }

  /** Gives `workers` (spawned early) their channels; resolves once each listens (the source may connect from then on). */
  static async open(pool: ChannelWorkers, o: DestinationChannelsOptions): Promise<DestinationChannels> {
    const n = o.listens.length;
    await pool.init(n, ARENA_BYTES, (index, arena) => {
      const listen = o.listens[index];
      return {
        message: {
          ...commonInit(o, index, n, arena),
          role: "destination",
          listen,
          digest: { seed: o.digest.seed.toString(16), table: o.digest.tableAddress, hashed: o.digest.hashedAddress },
        },
        transfer: listen.kind === "port" ? [listen.port] : [],
      };
    });
    try {
      const listening = await within(
        pool.all("listening"),
        o.timeouts?.handshake,
        "TIMEOUT_HANDSHAKE",
        "data channels did not listen",
      );
      const endpoints = await Promise.all(
        listening.map(async (l, i) =>
          l.port === undefined ? {} : { port: o.advertise ? await o.advertise(l.port, i) : l.port },
        ),
      );
      return new DestinationChannels(pool, endpoints, o.timeouts);
    } catch (err) {
      await pool.close(0);
      throw err;
    }
  }

  get count(): number {
    return this.#pool.count;
  }

  /** Rejects once any channel fails (race it with the control connection's frames). */
  get failed(): Promise<never> {
    return this.#pool.failed;
  }

  /** Resolves once every channel has applied all its pages of `round` (its SYNC). */
  async synced(round: number): Promise<void> {
    const t = this.#timeouts;
    await within(this.#joined, t?.handshake, "TIMEOUT_HANDSHAKE", "data channels did not join");
    const all = async () => {
      for (let i = 0; i < this.count; i++) {
        for (;;) {
          const s = await this.#pool.next(i, "synced");
          if (s.round > round)
            throw new ProtocolError(
              "PROTOCOL_STAGE",
              `data channel ${i} synced round ${s.round} before ROUND_END ${round}`,
            );
          this.#pages[i] = s.pages;
          this.#bytes[i] = s.bytes;
          if (s.round === round) break;
        }
      }
    };
    await within(all(), t?.frame, "TIMEOUT_RECEIVING", `data channels did not sync round ${round}`);
  }

  /** Records applied and bytes received on the data channels up to the last sync. */
  get pagesReceived(): number {
    return this.#pages.reduce((a, b) => a + b, 0);
  }

  get bytesReceived(): number {
    return this.#bytes.reduce((a, b) => a + b, 0);
  }

  close(): Promise<unknown> {
    return this.#pool.close(1);
  }
}
