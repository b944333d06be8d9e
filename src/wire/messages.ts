// The migration protocol: every message, its frame type and its payload. Frames
// (wire/frame.ts) carry one message each; PAGES payloads are page records
// (wire/page-record.ts). Each message has one codec used by both sides (encode on the
// sender, decode + validation on the receiver).
//
//   source                                          destination
//     | ◄──────────────────────── CHALLENGE {nonce}    |  every connection opens with a fresh nonce
//     | HELLO {version, pageSize, pageCount,           |  (a keyed HELLO's HMAC covers it: no replay)
//     |        features, mode, nonce}  ──────────────► |  checks version and sizes, picks features
//     | ◄────────────── WELCOME {features, nonce}      |  session = source nonce ‖ challenge
//     | [PREAMBLE {bytes}] ──────────────────────────► |  the caller's opaque header (a QEMU stream's)
//     | PAGES* ROUND_END {round, pages}  (per round) ─►|  applies records
//     |   [onPause]                                    |
//     | PAGES* DEVICE_STATE ─────────────────────────► |
//     |   post-copy: POSTCOPY_START {missing bitmap} ─►|  ownership moves: the destination guest
//     |              ◄──────────── PAGE_REQUEST {page} |  runs; a fault sends a request that
//     |              PAGES* POSTCOPY_END ────────────► |  jumps the queue
//     | COMPLETE {digest, pagesSent, seed?} ─────────► |  verifies the digest, flushes: PREPARED
//     | ◄────────── COMMIT_ACK {digest, latencies}     |
//     |   the source decides: COMMIT                   |
//     | ACTIVATE ────────────────────────────────────► |  commits the memory, the guest runs
//     | ◄──────────────────────────────── ACTIVATED    |
//     | ABORT {code, message}  ◄──► either side, before the decision
//
//   data channels (HELLO {channels: n} asks, WELCOME {channels: endpoints} answers; each
//   is its own connection, CHALLENGE first, frames bound to source nonce ‖ its challenge):
//     | JOIN {session, channel} ─────────────────────► |  a connection of this session, channel i
//     | ◄──────────────────────── JOINED {channel}     |
//     | PAGES* SYNC {round} (per round) ─────────────► |  ROUND_END on the control connection is
//     |                                                |  applied once every channel synced the round
//     | SYNC {round, end: true}, close ──────────────► |  before DEVICE_STATE / POSTCOPY_START
//
//   after a lost connection, on a new one (the source reconnects; CHALLENGE first again):
//     | RESUME {session, decision} ──────────────────► |  decision "abort": discard; "commit": activate
//     | ◄──────────────────── RESUMED {state}          |  state "discarded" | "active"
//     |   decision "postcopy": ◄── POSTCOPY_RECOVER {missing bitmap}, then post-copy goes on
//
// Ownership (engine/ownership.ts has the state machine): the source runs the guest until it
// sends POSTCOPY_START or decides COMMIT; the destination runs it after POSTCOPY_START or
// ACTIVATE. A destination that sent COMMIT_ACK (prepared) or runs never discards on its
// own; a source that decided COMMIT or sent POSTCOPY_START never resumes.
//
import { PagewireError, type PagewireErrorCode } from "../errors.js";
import { FrameType, frameTypeName, PROTOCOL_VERSION } from "./frame.js";

/** A control message is malformed or arrives in the wrong stage (codes PROTOCOL_MESSAGE, PROTOCOL_STAGE, PROTOCOL_MISMATCH, PROTOCOL_VERSION). */
export class ProtocolError extends PagewireError {}

export interface Hello {
  version: number;
  pageSize: number;
  pageCount: number;
  features: string[];
  mode: string;
  nonce: string;
  /** Data channels the source would use (absent or 0: pages go on this connection). */
  channels?: number;
}

export interface Challenge {
  nonce: string;
}

export interface Welcome {
  features: string[];
  nonce: string;
  /** Data channels the destination opened (as many as it accepts, maybe none): where each is reached. */
  channels?: ChannelEndpoint[];
}

/** Where the source reaches one data channel: a TCP port on the control connection's host, or a port handed over in process. */
export interface ChannelEndpoint {
  port?: number;
}

export interface Join {
  /** The session: source nonce ‖ destination nonce (64 hex digits). */
  session: string;
  channel: number;
}
export interface Joined {
  channel: number;
}
export interface Sync {
  round: number;
  /** The source's last word on this channel: it closes next (a close without it is a lost connection). */
  end?: boolean;
}

export interface RoundEnd {
  round: number;
  pages: number;
}

export interface Complete {
  digest: string;
  pagesSent: number;
  /** Hex seed of the per-page hashes when the source took them from its hash-scan dirty log (default: the session seed). */
  seed?: string;
}

export interface CommitAck {
  digest: string;
  /** Post-copy fault latencies seen by the destination's guest, ms. */
  faultLatencyP50Ms?: number;
  faultLatencyP99Ms?: number;
}

/** What the source decided, as it tells a destination on a new connection. */
export type SourceDecision = "abort" | "commit" | "postcopy";

export interface Resume {
  /** The session being resumed: source nonce ‖ destination nonce (64 hex digits). */
  session: string;
  decision: SourceDecision;
}

export interface Resumed {
  /** "discarded": the destination dropped what it had and will not run; "active": it runs. */
  state: "discarded" | "active";
}

export interface Abort {
  /**
   * The code of the error that ended the peer's side: one of ERROR_CODES ("ERROR" for a
   * failure without a code). Not checked on receipt: a peer of another version, or an
   * error with a foreign code (Node's "ECONNRESET"), can put another string here.
   */
  code: PagewireErrorCode;
  message: string;
}

/** One message's frame type and payload codec. */
export interface MessageCodec<T> {
  readonly type: FrameType;
  readonly name: string;
  encode(value: T): Uint8Array;
  /** Decodes and validates; throws ProtocolError (PROTOCOL_MESSAGE) on a malformed payload. */
  decode(payload: Uint8Array): T;
}

type FieldType = "number" | "string" | "array" | "nonce";

const enc = new TextEncoder();
const dec = new TextDecoder();

function jsonMessage<T extends object>(type: FrameType, fields: Record<string, FieldType>): MessageCodec<T> {
  const name = frameTypeName(type);
  return {
    type,
    name,
    encode: (value) => enc.encode(JSON.stringify(value)),
    decode(payload) {
      let value: unknown;
      try {
        value = JSON.parse(dec.decode(payload.slice())); // a copy: the payload may be a view of shared kernel memory
      } catch {
        throw new ProtocolError("PROTOCOL_MESSAGE", `${name}: payload of ${payload.length} bytes is not JSON`);
      }
      if (typeof value !== "object" || value === null)
        throw new ProtocolError("PROTOCOL_MESSAGE", `${name}: payload is not an object`);
      for (const [field, kind] of Object.entries(fields)) {
        const v = (value as Record<string, unknown>)[field];
        const ok =
          kind === "array"
            ? Array.isArray(v)
            : kind === "nonce"
              ? typeof v === "string" && NONCE.test(v)
              : typeof v === kind && (kind !== "number" || Number.isFinite(v));
        if (!ok)
          throw new ProtocolError(
            "PROTOCOL_MESSAGE",
            `${name}: field '${field}' must be a ${kind === "nonce" ? "nonce of 32 hex digits" : kind}`,
          );
      }
      return value as T;
    },
  };
}

function bytesMessage(type: FrameType): MessageCodec<Uint8Array> {
  return { type, name: frameTypeName(type), encode: (value) => value, decode: (payload) => payload };
}

function emptyMessage(type: FrameType): MessageCodec<void> {
  const name = frameTypeName(type);
  return {
    type,
    name,
    encode: () => new Uint8Array(0),
    decode(payload) {
      if (payload.length !== 0)
        throw new ProtocolError("PROTOCOL_MESSAGE", `${name}: payload of ${payload.length} bytes, want none`);
    },
  };
}

function u32Message(type: FrameType): MessageCodec<number> {
  const name = frameTypeName(type);
  return {
    type,
    name,
    encode(n) {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, n, true);
      return b;
    },
    decode(payload) {
      if (payload.length !== 4)
        throw new ProtocolError("PROTOCOL_MESSAGE", `${name}: payload of ${payload.length} bytes, want 4`);
      return new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0, true);
    },
  };
}

/** Every message of the protocol, by name. */
export const Message = {
  CHALLENGE: jsonMessage<Challenge>(FrameType.CHALLENGE, { nonce: "nonce" }),
  HELLO: jsonMessage<Hello>(FrameType.HELLO, {
    version: "number",
    pageSize: "number",
    pageCount: "number",
    features: "array",
    mode: "string",
    nonce: "nonce",
  }),
  WELCOME: jsonMessage<Welcome>(FrameType.WELCOME, { features: "array", nonce: "nonce" }),
  PAGES: bytesMessage(FrameType.PAGES),
  ROUND_END: jsonMessage<RoundEnd>(FrameType.ROUND_END, { round: "number", pages: "number" }),
  DEVICE_STATE: bytesMessage(FrameType.DEVICE_STATE),
  PREAMBLE: bytesMessage(FrameType.PREAMBLE),
  POSTCOPY_START: bytesMessage(FrameType.POSTCOPY_START),
  PAGE_REQUEST: u32Message(FrameType.PAGE_REQUEST),
  POSTCOPY_END: emptyMessage(FrameType.POSTCOPY_END),
  COMPLETE: jsonMessage<Complete>(FrameType.COMPLETE, { digest: "string", pagesSent: "number" }),
  COMMIT_ACK: jsonMessage<CommitAck>(FrameType.COMMIT_ACK, { digest: "string" }),
  ACTIVATE: emptyMessage(FrameType.ACTIVATE),
  ACTIVATED: emptyMessage(FrameType.ACTIVATED),
  RESUME: jsonMessage<Resume>(FrameType.RESUME, { session: "string", decision: "string" }),
  RESUMED: jsonMessage<Resumed>(FrameType.RESUMED, { state: "string" }),
  POSTCOPY_RECOVER: bytesMessage(FrameType.POSTCOPY_RECOVER),
  ABORT: jsonMessage<Abort>(FrameType.ABORT, { code: "string", message: "string" }),
  JOIN: jsonMessage<Join>(FrameType.JOIN, { session: "string", channel: "number" }),
  JOINED: jsonMessage<Joined>(FrameType.JOINED, { channel: "number" }),
  SYNC: jsonMessage<Sync>(FrameType.SYNC, { round: "number" }),
} as const;

/** Checks a HELLO against what this side speaks; throws ProtocolError PROTOCOL_VERSION / PROTOCOL_MISMATCH. */
export function checkHello(hello: Hello, pageSize: number): void {
  if (hello.version !== PROTOCOL_VERSION)
    throw new ProtocolError(
      "PROTOCOL_VERSION",
      `source speaks migration protocol ${hello.version}, this destination ${PROTOCOL_VERSION}`,
    );
  if (hello.pageSize !== pageSize)
    throw new ProtocolError("PROTOCOL_MISMATCH", `source page size ${hello.pageSize}, destination ${pageSize}`);
}

const NONCE = /^[0-9a-f]{32}$/;

export function randomNonce(): string {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export function nonceBytes(hex: string): Uint8Array {
  if (!NONCE.test(hex))
    throw new ProtocolError("PROTOCOL_MESSAGE", `nonce must be 32 hex digits, got '${hex.slice(0, 40)}'`);
  return Uint8Array.from(hex.match(/../g)!.map((h) => parseInt(h, 16)));
}

/** The nonce keyed frames are bound to before the session exists: 16 zero bytes ‖ the challenge. */
export function challengeNonce(challenge: string): Uint8Array {
  const out = new Uint8Array(32);
  out.set(nonceBytes(challenge), 16);
  return out;
}

/** Session nonce bound into keyed frames: source nonce ‖ destination nonce (a connection's challenge). */
export function sessionNonce(source: string, destination: string): Uint8Array {
  const out = new Uint8Array(32);
  out.set(nonceBytes(source));
  out.set(nonceBytes(destination), 16);
  return out;
}
