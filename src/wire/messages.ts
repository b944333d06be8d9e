// Control messages carried in frames (frame types in transport/frame.ts). PAGES and
// DEVICE_STATE payloads are binary (codec/page-record.ts, opaque bytes); PAGE_REQUEST is
// one u32; the rest are small JSON objects, validated field by field on receipt.
//
//   source                                   destination
//     | HELLO {version, pageSize, pageCount,     |
//     |        features, mode, nonce}  --------> |  checks sizes, picks features
//     | <-------- WELCOME {features, nonce}      |
//     | PAGES* ROUND_END (per pre-copy round) -> |  applies records
//     |   [onPause]                              |
//     | PAGES* DEVICE_STATE ------------------>  |
//     |   (post-copy: POSTCOPY_START; then       |
//     |    <- PAGE_REQUEST*, PAGES* -> ...       |  guest runs, faults request pages
//     |    POSTCOPY_END)                         |
//     | COMPLETE {digest} ---------------------> |  verifies the whole-memory digest
//     | <-------- COMMIT_ACK {digest}            |
//     | ACTIVATE ------------------------------> |  the source committed: destination runs
//     | ABORT {code, message} <-> (either side, any time before the commit)
//
// The commit point is the source accepting COMMIT_ACK. The destination keeps what it
// received provisional until ACTIVATE, so a lost or corrupted acknowledgement (the
// source then aborts and resumes) never leaves two running guests.
import { PagewireError, type PagewireErrorCode } from "../errors.js";

/** A control message is malformed or arrives in the wrong stage (codes PROTOCOL_MESSAGE, PROTOCOL_STAGE, PROTOCOL_MISMATCH). */
export class ProtocolError extends PagewireError {}

export type Feature = "zero" | "xbzrle" | "rle" | "dedup" | "postcopy" | "device-state";
export const ALL_FEATURES: readonly Feature[] = ["zero", "xbzrle", "rle", "dedup", "postcopy", "device-state"];

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
  /**
   * The code of the error that ended the peer's side: one of ERROR_CODES ("ERROR" for a
   * failure without a code). Not checked on receipt: a peer of another version, or an
   * error with a foreign code (Node's "ECONNRESET"), can put another string here.
   */
  code: PagewireErrorCode;
  message: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeJson(value: object): Uint8Array {
  return enc.encode(JSON.stringify(value));
}

/** Parses a JSON control payload and checks that each named field has the given type. */
export function decodeJson<T>(payload: Uint8Array, what: string, fields: Record<string, "number" | "string" | "array">): T {
  let value: unknown;
  try {
    value = JSON.parse(dec.decode(payload.slice())); // a copy: the payload may be a view of shared kernel memory
  } catch {
    throw new ProtocolError("PROTOCOL_MESSAGE", `${what}: payload of ${payload.length} bytes is not JSON`);
  }
  if (typeof value !== "object" || value === null) throw new ProtocolError("PROTOCOL_MESSAGE", `${what}: payload is not an object`);
  for (const [name, type] of Object.entries(fields)) {
    const v = (value as Record<string, unknown>)[name];
    const ok = type === "array" ? Array.isArray(v) : typeof v === type && (type !== "number" || Number.isFinite(v));
    if (!ok) throw new ProtocolError("PROTOCOL_MESSAGE", `${what}: field '${name}' must be a ${type}`);
  }
  return value as T;
}

export function encodeU32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

export function decodeU32(payload: Uint8Array, what: string): number {
  if (payload.length !== 4) throw new ProtocolError("PROTOCOL_MESSAGE", `${what}: payload of ${payload.length} bytes, want 4`);
  return new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0, true);
}

export function randomNonce(): string {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export function nonceBytes(hex: string): Uint8Array {
  if (!/^[0-9a-f]{32}$/.test(hex)) throw new ProtocolError("PROTOCOL_MESSAGE", `nonce must be 32 hex digits, got '${hex.slice(0, 40)}'`);
  return Uint8Array.from(hex.match(/../g)!.map((h) => parseInt(h, 16)));
}

/** Session nonce bound into keyed frames: source nonce ‖ destination nonce. */
export function sessionNonce(source: string, destination: string): Uint8Array {
  const a = nonceBytes(source);
  const b = nonceBytes(destination);
  const out = new Uint8Array(32);
  out.set(a);
  out.set(b, 16);
  return out;
}
