// Wire frames: every message of a migration travels as one frame.
//
//   frame   = header payload trailer
//   header  = magic:"PGWF" version:u8 type:u8 flags:u16 seq:u32 length:u32     (16 bytes, LE)
//   payload = length bytes                       (length ≤ the reader's maxPayload)
//   trailer = check:u32 [hmac:32 bytes]          (check = low 32 bits of XXH3-64(header+payload, seed 0);
//                                                 hmac when flags & KEYED)
//
//   hmac    = HMAC-SHA256(key, sessionNonce ‖ header ‖ payload)
//
// `seq` counts frames per direction from 0: a reader accepts only the next number, so a
// dropped, replayed or reordered frame is an error. The session nonce (source nonce ‖
// destination nonce, exchanged in the handshake) ties keyed frames to one migration, so
// frames recorded from another session do not verify. A reader checks, in order: magic,
// version, length bound, checksum, HMAC, sequence — before the payload is looked at.
import { PagewireError } from "../errors.js";
import { hashBytes64 } from "../kernel/pagehash.js";
import type { Kernel } from "../kernel/kernel.js";

export const FRAME_MAGIC = 0x46574750; // "PGWF" little-endian
export const PROTOCOL_VERSION = 2;
export const FRAME_HEADER_BYTES = 16;
export const FRAME_CRC_BYTES = 4;
export const FRAME_HMAC_BYTES = 32;
/** Default bound on a frame's payload: readers reject larger frames before buffering them. */
export const DEFAULT_MAX_PAYLOAD = 8 << 20;

export const FLAG_KEYED = 1;
/** Bytes after a payload that always hold the trailer (checksum and HMAC). */
export const FRAME_TRAILER_ROOM = FRAME_CRC_BYTES + FRAME_HMAC_BYTES;

/** Frame types. */
export const FrameType = {
  HELLO: 1,
  WELCOME: 2,
  PAGES: 3,
  ROUND_END: 4,
  DEVICE_STATE: 5,
  COMPLETE: 6,
  COMMIT_ACK: 7,
  ABORT: 8,
  PAGE_REQUEST: 9,
  POSTCOPY_START: 10,
  POSTCOPY_END: 11,
  ACTIVATE: 12,
  ACTIVATED: 13,
  RESUME: 14,
  RESUMED: 15,
  POSTCOPY_RECOVER: 16,
  CHALLENGE: 17,
  JOIN: 18,
  JOINED: 19,
  SYNC: 20,
  PREAMBLE: 21,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export function frameTypeName(t: number): string {
  return Object.entries(FrameType).find(([, v]) => v === t)?.[0] ?? `type ${t}`;
}

/** A frame failed a check; `code` says which (FRAME_MAGIC, PROTOCOL_VERSION, FRAME_TOO_LARGE, FRAME_TRUNCATED, FRAME_CHECKSUM, FRAME_HMAC, FRAME_SEQUENCE, FRAME_KEY). */
export class FrameError extends PagewireError {}

/** HMAC-SHA256 provider (node:crypto on Node). Null where none is available. */
export type HmacFunction = (key: Uint8Array, parts: Uint8Array[]) => Uint8Array;

export interface FrameKey {
  key: Uint8Array;
  hmac: HmacFunction;
}

/** The frame checksum: low 32 bits of XXH3-64 (seed 0), computed by the WASM kernel (~20 GB/s). */
export type FrameChecksum = (data: Uint8Array) => number;

export function frameChecksum(k: Kernel): FrameChecksum {
  return (data) => Number(hashBytes64(k, data) & 0xffffffffn);
}

export interface Frame {
  type: number;
  seq: number;
  payload: Uint8Array;
}

/** Total frame size for a payload of `length` bytes. */
export function frameSize(length: number, keyed: boolean): number {
  return FRAME_HEADER_BYTES + length + FRAME_CRC_BYTES + (keyed ? FRAME_HMAC_BYTES : 0);
}

/** Numbers each outgoing frame and seals it (checksum, HMAC once the session is keyed). */
export class FrameWriter {
  #seq = 0;
  #key: FrameKey | null;
  #nonce: Uint8Array = new Uint8Array(0);
  readonly #check: FrameChecksum;

  constructor(check: FrameChecksum, key: FrameKey | null = null) {
    this.#check = check;
    this.#key = key;
  }

  /** Sets the session nonce that keyed frames bind to (after the handshake). */
  setSessionNonce(nonce: Uint8Array): void {
    this.#nonce = nonce;
  }

  /** Builds a frame around `payload` (copied once). */
  seal(type: number, payload: Uint8Array): Uint8Array {
    const frame = new Uint8Array(frameSize(payload.length, this.#key !== null));
    frame.set(payload, FRAME_HEADER_BYTES);
    return this.sealInPlace(type, frame, payload.length);
  }

  /**
   * Seals a frame whose payload already sits at byte 16 of `buffer` (`length` bytes),
   * writing header and trailer around it: no copy. `buffer` must hold the whole frame
   * (FRAME_TRAILER_ROOM bytes after the payload suffice). Returns the frame, a prefix of `buffer`.
   */
  sealInPlace(type: number, buffer: Uint8Array, length: number): Uint8Array {
    const keyed = this.#key !== null;
    const size = frameSize(length, keyed);
    if (buffer.length < size)
      throw new FrameError(
        "FRAME_BUFFER",
        `sealInPlace: ${length}-byte payload needs a ${size}-byte buffer, got ${buffer.length}`,
      );
    const frame = buffer.subarray(0, size);
    const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    v.setUint32(0, FRAME_MAGIC, true);
    frame[4] = PROTOCOL_VERSION;
    frame[5] = type;
    v.setUint16(6, keyed ? FLAG_KEYED : 0, true);
    v.setUint32(8, this.#seq++ >>> 0, true);
    v.setUint32(12, length, true);
    const body = frame.subarray(0, FRAME_HEADER_BYTES + length);
    v.setUint32(body.length, this.#check(body), true);
    if (this.#key) frame.set(this.#key.hmac(this.#key.key, [this.#nonce, body]), body.length + FRAME_CRC_BYTES);
    return frame;
  }
}

/** Verifies incoming frames in order. */
export class FrameReader {
  #seq = 0;
  #key: FrameKey | null;
  #nonce: Uint8Array = new Uint8Array(0);
  readonly maxPayload: number;
  readonly #check: FrameChecksum;

  constructor(check: FrameChecksum, key: FrameKey | null = null, maxPayload = DEFAULT_MAX_PAYLOAD) {
    this.#check = check;
    this.#key = key;
    this.maxPayload = maxPayload;
  }

  setSessionNonce(nonce: Uint8Array): void {
    this.#nonce = nonce;
  }

  /** Checks a complete frame and returns its parts; the payload is a view into `frame`. */
  open(frame: Uint8Array): Frame {
    const length = checkFrameHeader(frame, this.maxPayload);
    const keyed = (frame[6] & FLAG_KEYED) !== 0;
    const want = frameSize(length, keyed);
    if (frame.length !== want) {
      throw new FrameError(
        "FRAME_TRUNCATED",
        `frame of ${frame.length} bytes, header says ${want} (payload ${length})`,
      );
    }
    const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    const body = frame.subarray(0, FRAME_HEADER_BYTES + length);
    const crc = v.getUint32(body.length, true);
    const actual = this.#check(body);
    if (crc !== actual)
      throw new FrameError(
        "FRAME_CHECKSUM",
        `frame ${v.getUint32(8, true)}: checksum ${hex(crc)} != computed ${hex(actual)}`,
      );
    if (this.#key && !keyed) throw new FrameError("FRAME_KEY", "frame is not authenticated but a key is configured");
    if (!this.#key && keyed) throw new FrameError("FRAME_KEY", "frame is authenticated but no key is configured");
    if (this.#key) {
      const mac = this.#key.hmac(this.#key.key, [this.#nonce, body]);
      const got = frame.subarray(body.length + FRAME_CRC_BYTES);
      let diff = 0;
      for (let i = 0; i < FRAME_HMAC_BYTES; i++) diff |= mac[i] ^ got[i];
      if (diff !== 0)
        throw new FrameError(
          "FRAME_HMAC",
          `frame ${v.getUint32(8, true)}: HMAC does not verify (wrong key or altered frame)`,
        );
    }
    const seq = v.getUint32(8, true);
    if (seq !== this.#seq)
      throw new FrameError(
        "FRAME_SEQUENCE",
        `frame sequence ${seq}, expected ${this.#seq} (dropped, replayed or reordered frame)`,
      );
    this.#seq = (this.#seq + 1) >>> 0;
    return { type: frame[5], seq, payload: frame.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length) };
  }
}

/**
 * Checks magic, version and the length bound of a frame header (at least 16 bytes);
 * returns the payload length. Stream transports call this before buffering a payload.
 */
export function checkFrameHeader(header: Uint8Array, maxPayload: number): number {
  if (header.length < FRAME_HEADER_BYTES)
    throw new FrameError(
      "FRAME_TRUNCATED",
      `frame of ${header.length} bytes is shorter than its ${FRAME_HEADER_BYTES}-byte header`,
    );
  const v = new DataView(header.buffer, header.byteOffset, FRAME_HEADER_BYTES);
  const magic = v.getUint32(0, true);
  if (magic !== FRAME_MAGIC)
    throw new FrameError("FRAME_MAGIC", `bad frame magic ${hex(magic)}, want ${hex(FRAME_MAGIC)} ("PGWF")`);
  if (header[4] !== PROTOCOL_VERSION)
    throw new FrameError(
      "PROTOCOL_VERSION",
      `protocol version ${header[4]} is not supported (this side speaks ${PROTOCOL_VERSION})`,
    );
  const length = v.getUint32(12, true);
  if (length > maxPayload)
    throw new FrameError("FRAME_TOO_LARGE", `frame payload of ${length} bytes exceeds the limit of ${maxPayload}`);
  return length;
}

/** Size of the whole frame announced by a header (checked with checkFrameHeader first). */
export function announcedFrameSize(header: Uint8Array, maxPayload: number): number {
  const length = checkFrameHeader(header, maxPayload);
  return frameSize(length, (header[6] & FLAG_KEYED) !== 0);
}

function hex(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, "0")}`;
}
