// QEMU's return path (migration.c): messages from the destination back to the source on
// the same connection, each be16 type, be16 length, data. In pre-copy only two matter:
// PONG answers a PING command; SHUT ends the migration (0: the destination loaded the
// stream; anything else: it failed). A source QEMU with the return-path capability counts
// the migration done only on SHUT 0 — that is what lets the proxy hold QEMU's completion
// until pagewire's commit decision.
import { QemuStreamError } from "./qemu-stream.js";

export const ReturnPathMessage = { SHUT: 1, PONG: 2 } as const;
/** QEMU's source refuses longer return-path messages (source_return_path_thread, max_len); be16 lengths reach 65535. */
const MAX_MESSAGE = 512;

/** One return-path message carrying a be32 value. */
export function returnPathMessage(type: number, value: number): Uint8Array {
  const m = new Uint8Array(8);
  const v = new DataView(m.buffer);
  v.setUint16(0, type);
  v.setUint16(2, 4);
  v.setUint32(4, value >>> 0);
  return m;
}

/** Reads return-path messages from the bytes a destination QEMU writes back. */
export class ReturnPathReader {
  #buf = new Uint8Array(0);
  readonly #on: (type: number, data: Uint8Array) => void;

  constructor(on: (type: number, data: Uint8Array) => void) {
    this.#on = on;
  }

  push(chunk: Uint8Array): void {
    const b = this.#buf.length ? concat2(this.#buf, chunk) : chunk;
    let p = 0;
    while (b.length - p >= 4) {
      const type = (b[p] << 8) | b[p + 1];
      const len = (b[p + 2] << 8) | b[p + 3];
      if (len > MAX_MESSAGE)
        throw new QemuStreamError("QEMU_STREAM_MALFORMED", `return-path message ${type} of ${len} bytes`);
      if (b.length - p < 4 + len) break;
      this.#on(type, b.subarray(p + 4, p + 4 + len));
      p += 4 + len;
    }
    this.#buf = b.slice(p);
  }
}

/** The be32 value of a SHUT or PONG message. */
export function returnPathValue(data: Uint8Array): number {
  if (data.length !== 4)
    throw new QemuStreamError("QEMU_STREAM_MALFORMED", `return-path value of ${data.length} bytes`);
  return new DataView(data.buffer, data.byteOffset, 4).getUint32(0);
}

function concat2(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
