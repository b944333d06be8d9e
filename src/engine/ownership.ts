// Who owns the guest during a migration. The invariant, checked by the fault-matrix tests:
// at every instant at most one side runs the guest, and the side that holds the newest
// memory is never discarded. (The phases follow QEMU's and libvirt's: a two-phase commit
// with the source as coordinator for pre-copy; for post-copy, ownership moves at the
// switch and a lost connection pauses the destination until recovery.)
//
//   source       running ──onPause──► paused ──COMMIT_ACK accepted──► committed ──ACTIVATED──► done
//                   ▲                   │  └──POSTCOPY_START sent────► postcopy ──ACTIVATED──► done
//                   └──onResume (abort)─┘     (the decision; never resumes after it)
//                committed / postcopy, connection lost: reconnect, RESUME {decision}; when the
//                window ends ──► in doubt: stays paused, `pagewire resolve` / resolve() decides
//
//   destination  receiving ──COMMIT_ACK sent──► prepared ──ACTIVATE or RESUME commit──► active
//                    │  └──POSTCOPY_START──► postcopy ⇄ postcopy-paused (connection lost;
//                    │                        RESUME postcopy ─► POSTCOPY_RECOVER {missing})
//                    └──failure, ABORT, RESUME abort──► discarded
//                prepared, connection lost, the window ends ──► in doubt: keeps the memory,
//                never runs on its own; resolve("commit" | "abort") decides
//
// Before the decision a failure aborts: the source resumes and tells the destination
// (ABORT, or RESUME abort on a new connection); a destination that is still receiving
// discards on its own once no reconnection came within the window.
import { PagewireError } from "../errors.js";
import { TransportError } from "../transport/transport.js";
import { FrameError } from "../wire/frame.js";

export type SourceState = "running" | "paused" | "committed" | "postcopy" | "done" | "aborted" | "in-doubt";
export type DestinationState =
  | "receiving"
  | "prepared"
  | "postcopy"
  | "postcopy-paused"
  | "active"
  | "discarded"
  | "in-doubt";

/** Seconds each wait may last before the peer counts as gone. */
export interface MigrationTimeouts {
  /** HELLO/WELCOME exchange. */
  handshake: number;
  /** Gap between two frames while the peer is expected to send, and one frame's send. */
  frame: number;
  /** COMPLETE → COMMIT_ACK (the destination verifies the digest and flushes meanwhile). */
  commit: number;
  /** ACTIVATE → ACTIVATED. */
  activation: number;
  /** A post-copy page request → the page. */
  pageRequest: number;
  /** How long a side waits for (destination) or keeps trying (source) a new connection after one was lost. */
  reconnectWindow: number;
}

export const DEFAULT_TIMEOUTS: MigrationTimeouts = {
  handshake: 10,
  frame: 60,
  commit: 120,
  activation: 30,
  pageRequest: 30,
  reconnectWindow: 30,
};

/** Merges caller timeouts over the defaults; `false` turns every timeout off (virtual-time runs). */
export function resolveTimeouts(t: Partial<MigrationTimeouts> | false | undefined): MigrationTimeouts | null {
  return t === false ? null : { ...DEFAULT_TIMEOUTS, ...t };
}

/** A peer did not answer in time (`code` TIMEOUT_<stage>). */
export class MigrationTimeoutError extends PagewireError {}

/**
 * The connection failed between a decision and the peer learning it, and no new
 * connection settled it within the window. Neither side runs the guest; `resolve()` (or
 * `pagewire resolve`) decides. `decision` is what the source had decided, when known.
 */
export class MigrationInDoubtError extends PagewireError {
  constructor(
    readonly side: "source" | "destination",
    readonly decision: "commit" | "postcopy" | "unknown",
    message: string,
    options?: { cause?: unknown },
  ) {
    super("MIGRATION_IN_DOUBT", message, options);
  }
}

/** True for failures of the connection itself (lost, cut, corrupted, silent), which a new connection may repair. */
export function isLinkFailure(err: unknown): boolean {
  if (err instanceof TransportError || err instanceof FrameError || err instanceof MigrationTimeoutError) return true;
  const code = (err as { code?: string })?.code;
  return code === "CONNECTION_CLOSED";
}
