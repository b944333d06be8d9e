// What a MigrationSource is given: the guest, its dirty log, the connection, the mode and
// policies, the limits and timeouts, and the callbacks that pause and resume the guest.
import type { CodecOptions } from "../codec/encode-pipeline.js";
import type { Kernel } from "../kernel/kernel.js";
import type { DirtyLog, GuestMemory } from "../memory/guest-memory.js";
import type { PageHistory } from "../policy/page-history.js";
import type { MessagePortLike } from "../transport/message-port.js";
import type { TcpOptions } from "../transport/tcp.js";
import type { Transport } from "../transport/transport.js";
import type { Clock } from "../util/clock.js";
import type { FrameKey } from "../wire/frame.js";
import type { AutoModeOptions } from "./auto-predict.js";
import type { MigrationTimeouts } from "./ownership.js";
import type { PolicyChoice } from "./policies.js";

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
  /**
   * Shortest pre-copy round, ms, when the selection policy deferred pages (default 1000,
   * QEMU's dirty-sync period): such a round lasts until the next sync instead of ending as
   * soon as its pages are out. See engine/precopy-rounds.ts.
   */
  minRoundMs?: number;
  /**
   * A page history already fed the dirty log's harvests before the migration (a warm-up,
   * on this kernel, one bit per guest page): history-threshold counts modifications since
   * then, and without one sees only the migration's own syncs (its T then stays below 1 on
   * most guests and it defers every dirtied page; sim/warm-up.ts builds one from the boot
   * and a warm-up). The source reads it and records its rounds into it; the caller frees it.
   */
  history?: PageHistory;
  /** Pauses the guest (stop-and-copy starts when it resolves). */
  onPause?: () => void | Promise<void>;
  /** Resumes the guest on the source after a migration that failed before the decision. */
  onResume?: () => void | Promise<void>;
  /**
   * Called at the decision (COMMIT_ACK received), just before it takes effect: from its
   * return on, the source will not run the guest again. Throwing aborts the migration instead.
   */
  onCommit?: () => void | Promise<void>;
  /**
   * Opaque bytes sent once after the handshake, before any page (PREAMBLE): the header of
   * a QEMU migration stream that the destination replays. The destination needs onPreamble.
   */
  preamble?: Uint8Array;
  /**
   * The destination already holds every page the dirty log does not report (it is fed
   * only what the log reports, as with QEMU's own stream): the first round sends only
   * dirty pages, not all memory. Default false.
   */
  dirtyOnly?: boolean;
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
  /** Milliseconds between two `progress` events (default 250; each round's end emits one as well). */
  progressIntervalMs?: number;
  /** Pre-shared key: every frame carries an HMAC-SHA256. */
  key?: FrameKey;
  clock?: Clock;
  /** Pages per encode batch (default 256). */
  batchPages?: number;
  /** Payload bytes per PAGES frame (default 1 MiB). */
  frameBytes?: number;
  /**
   * Auto mode: how long to watch the guest before choosing, ms (default: 10 % of one pass
   * over the guest at the rate limit, within 20..200 ms; auto-mode.ts defaultProbeMs).
   */
  autoProbeMs?: number;
  /** Auto mode: predict each mode in the simulator and weigh the predictions (engine/auto-predict.ts). */
  auto?: AutoModeOptions;
  /** Post-copy pre-paging window: pages after a fault pushed next (default 16). */
  prepagePages?: number;
  /**
   * Opens a new connection to the same destination after one was lost (TCP: connect
   * again). Without it a lost connection after the decision leaves the migration in doubt.
   */
  reconnect?: () => Promise<Transport>;
  /** Seconds per wait (see MigrationTimeouts); `false`: none (virtual-time runs). */
  timeouts?: Partial<MigrationTimeouts> | false;
  /**
   * Data channels: the pages of the pre-copy rounds and of stop-and-copy go over `count`
   * more connections (the destination may accept fewer), each encoded by its own Worker
   * reading guest RAM in place. Needs a WasmGuestMemory on this shared kernel, a dirty log
   * without `observe`, and no gang dedup index; otherwise pages go on the control connection.
   */
  channels?: ChannelOptions;
}

/** How data channels are made (either side). */
export interface ChannelOptions {
  /** Channels wanted (default: `ports.length`, else the cores available). */
  count?: number;
  /** TCP: the source connects to the ports the destination's WELCOME names on `host`; the destination listens on `host`. */
  tcp?: {
    host: string;
    tls?: TcpOptions["tls"];
    maxPayload?: number;
    /**
     * Destination: the port the source is to connect to for a channel listening on `port`
     * (port forwarding, NAT, a proxy in between); default the port itself.
     */
    advertise?: (port: number, channel: number) => number | Promise<number>;
  };
  /** In process: one MessagePort per channel (the other ends go to the destination). */
  ports?: MessagePortLike[];
}
