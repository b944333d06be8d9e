// The migration protocol: every message, its frame type and its payload. Frames
// (wire/frame.ts) carry one message each; PAGES payloads are page records
// (wire/page-record.ts). Each message has one codec used by both sides (encode on the
// sender, decode + validation on the receiver).
//
//   source                                          destination
//     | HELLO {version, pageSize, pageCount,           |
//     |        features, mode, nonce}  ──────────────► |  checks version and sizes, picks features
//     | ◄────────────── WELCOME {features, nonce}      |
//     | PAGES* ROUND_END {round, pages}  (per round) ─►|  applies records
//     |   [onPause]                                    |
//     | PAGES* DEVICE_STATE ─────────────────────────► |
//     |   post-copy: POSTCOPY_START {missing bitmap} ─►|  destination guest runs; a fault sends
//     |              ◄──────────── PAGE_REQUEST {page} |  a request that jumps the queue
//     |              PAGES* POSTCOPY_END ────────────► |
//     | COMPLETE {digest, pagesSent, seed?} ─────────► |  verifies the whole-memory digest
//     | ◄────────── COMMIT_ACK {digest, latencies}     |
//     | ACTIVATE ────────────────────────────────────► |  the source committed: destination runs
//     | ABORT {code, message}  ◄──► either side, any time before the commit
//
// The commit point is the source accepting COMMIT_ACK. The destination keeps what it
// received provisional until ACTIVATE, so a lost or corrupted acknowledgement (the
// source then aborts and resumes) never leaves two running guests.
//
// Payloads: HELLO, WELCOME, ROUND_END, COMPLETE, COMMIT_ACK and ABORT are small JSON
// objects checked field by field; PAGE_REQUEST is one u32 (LE); POSTCOPY_START is a
// bitmap (bit p of byte p/8: page p is missing); PAGES and DEVICE_STATE are bytes;
// POSTCOPY_END and ACTIVATE are empty.
import { PagewireError } from "../errors.js";
import { FrameType, frameTypeName, PROTOCOL_VERSION } from "./frame.js";

/** A control message is malformed or arrives in the wrong stage (codes PROTOCOL_MESSAGE, PROTOCOL_STAGE, PROTOCOL_MISMATCH, PROTOCOL_VERSION). */
export class ProtocolError extends PagewireError {}

/** A capability named in the handshake: a codec stage, "postcopy" or "device-state". */
export type Feature = string;

export interface Hello {
  version: number;
  pageSize: number;
  pageCount: number;
  features: Feature[];
  mode: string;
  nonce: string;
}

export interface Welcome {
  features: Feature[];
  nonce: string;
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

export interface Abort {
  code: string;
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
    type, name,
    encode: (value) => enc.encode(JSON.stringify(value)),
    decode(payload) {
      let value: unknown;
      try {
        value = JSON.parse(dec.decode(payload.slice())); // a copy: the payload may be a view of shared kernel memory
      } catch {
        throw new ProtocolError("PROTOCOL_MESSAGE", `${name}: payload of ${payload.length} bytes is not JSON`);
      }
      if (typeof value !== "object" || value === null) throw new ProtocolError("PROTOCOL_MESSAGE", `${name}: payload is not an object`);
      for (const [field, kind] of Object.entries(fields)) {
        const v = (value as Record<string, unknown>)[field];
        const ok =
          kind === "array" ? Array.isArray(v)
          : kind === "nonce" ? typeof v === "string" && NONCE.test(v)
          : typeof v === kind && (kind !== "number" || Number.isFinite(v));
        if (!ok) throw new ProtocolError("PROTOCOL_MESSAGE", `${name}: field '${field}' must be a ${kind === "nonce" ? "nonce of 32 hex digits" : kind}`);
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
    type, name,
    encode: () => new Uint8Array(0),
    decode(payload) {
      if (payload.length !== 0) throw new ProtocolError("PROTOCOL_MESSAGE", `${name}: payload of ${payload.length} bytes, want none`);
    },
  };
}

function u32Message(type: FrameType): MessageCodec<number> {
  const name = frameTypeName(type);
  return {
    type, name,
    encode(n) {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, n, true);
      return b;
    },
    decode(payload) {
      if (payload.length !== 4) throw new ProtocolError("PROTOCOL_MESSAGE", `${name}: payload of ${payload.length} bytes, want 4`);
      return new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0, true);
    },
  };
}

/** Every message of the protocol, by name. */
export const Message = {
  HELLO: jsonMessage<Hello>(FrameType.HELLO, { version: "number", pageSize: "number", pageCount: "number", features: "array", mode: "string", nonce: "nonce" }),
  WELCOME: jsonMessage<Welcome>(FrameType.WELCOME, { features: "array", nonce: "nonce" }),
  PAGES: bytesMessage(FrameType.PAGES),
  ROUND_END: jsonMessage<RoundEnd>(FrameType.ROUND_END, { round: "number", pages: "number" }),
  DEVICE_STATE: bytesMessage(FrameType.DEVICE_STATE),
  POSTCOPY_START: bytesMessage(FrameType.POSTCOPY_START),
  PAGE_REQUEST: u32Message(FrameType.PAGE_REQUEST),
  POSTCOPY_END: emptyMessage(FrameType.POSTCOPY_END),
  COMPLETE: jsonMessage<Complete>(FrameType.COMPLETE, { digest: "string", pagesSent: "number" }),
  COMMIT_ACK: jsonMessage<CommitAck>(FrameType.COMMIT_ACK, { digest: "string" }),
  ACTIVATE: emptyMessage(FrameType.ACTIVATE),
  ABORT: jsonMessage<Abort>(FrameType.ABORT, { code: "string", message: "string" }),
} as const;

/** Checks a HELLO against what this side speaks; throws ProtocolError PROTOCOL_VERSION / PROTOCOL_MISMATCH. */
export function checkHello(hello: Hello, pageSize: number): void {
  if (hello.version !== PROTOCOL_VERSION) throw new ProtocolError("PROTOCOL_VERSION", `source speaks migration protocol ${hello.version}, this destination ${PROTOCOL_VERSION}`);
  if (hello.pageSize !== pageSize) throw new ProtocolError("PROTOCOL_MISMATCH", `source page size ${hello.pageSize}, destination ${pageSize}`);
}

const NONCE = /^[0-9a-f]{32}$/;

export function randomNonce(): string {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export function nonceBytes(hex: string): Uint8Array {
  if (!NONCE.test(hex)) throw new ProtocolError("PROTOCOL_MESSAGE", `nonce must be 32 hex digits, got '${hex.slice(0, 40)}'`);
  return Uint8Array.from(hex.match(/../g)!.map((h) => parseInt(h, 16)));
}

/** Session nonce bound into keyed frames: source nonce ‖ destination nonce. */
export function sessionNonce(source: string, destination: string): Uint8Array {
  const out = new Uint8Array(32);
  out.set(nonceBytes(source));
  out.set(nonceBytes(destination), 16);
  return out;
}
