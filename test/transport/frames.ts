// Frames for transport tests: valid headers (magic, version, length), a payload whose
// every byte depends on the frame's number and offset, so a frame that was overwritten,
// mixed with another or cut in the wrong place is caught byte for byte.
import type { Transport } from "../../src/transport/transport.js";
import { FRAME_HEADER_BYTES, FrameType, FrameWriter, frameSize } from "../../src/wire/frame.js";

/** Payload byte `i` of frame `n`. */
export function patternByte(n: number, i: number): number {
  return (n * 131 + i * 7 + (i >>> 8) * 13) & 0xff;
}

/** Frame `n` with a payload of `length` bytes, sealed by a writer whose checksum is 0 (transports do not check it). */
export function makeFrame(n: number, length: number, into?: Uint8Array): Uint8Array {
  const size = frameSize(length, false);
  const frame = into ? into.subarray(0, size) : new Uint8Array(size);
  for (let i = 0; i < length; i++) frame[FRAME_HEADER_BYTES + i] = patternByte(n, i);
  const sealed = new FrameWriter(() => 0).sealInPlace(FrameType.PAGES, frame, length);
  new DataView(sealed.buffer, sealed.byteOffset).setUint32(8, n, true); // seq = n (the checksum stays 0)
  return sealed;
}

/** Throws unless `frame` is frame `n` with a `length`-byte payload, intact. */
export function checkFrame(frame: Uint8Array, n: number, length: number, what = "frame"): void {
  const size = frameSize(length, false);
  if (frame.length !== size) throw new Error(`${what} ${n}: ${frame.length} bytes, want ${size}`);
  const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  if (v.getUint32(8, true) !== n) throw new Error(`${what} ${n}: header says frame ${v.getUint32(8, true)}`);
  if (v.getUint32(12, true) !== length) throw new Error(`${what} ${n}: header says ${v.getUint32(12, true)} bytes`);
  for (let i = 0; i < length; i++) {
    if (frame[FRAME_HEADER_BYTES + i] !== patternByte(n, i))
      throw new Error(`${what} ${n}: payload byte ${i} is ${frame[FRAME_HEADER_BYTES + i]}, want ${patternByte(n, i)}`);
  }
}

/** Sends frame n (n = first, first+1, …) for each length, built in allocFrame buffers when the transport has them. */
export async function sendFrames(t: Transport, lengths: readonly number[], first = 0): Promise<void> {
  for (let k = 0; k < lengths.length; k++) {
    const size = frameSize(lengths[k], false);
    const buf = t.allocFrame?.(size);
    await t.send(makeFrame(first + k, lengths[k], buf));
  }
}

/** A JS-memory sink for receiveInto that grows as needed (like Channel's arena). */
export function growingSink(): { sink: (size: number) => Uint8Array; calls: number; last: () => Uint8Array } {
  let buf = new Uint8Array(1024);
  const s = {
    calls: 0,
    sink: (size: number) => {
      s.calls++;
      if (buf.length < size) buf = new Uint8Array(size);
      return buf;
    },
    last: () => buf,
  };
  return s;
}

/** Payload lengths covering the edges: empty, around the header size, the pool's smallest class, 1 MiB. */
export const EDGE_LENGTHS = [
  0,
  1,
  15,
  16,
  17,
  100,
  4076,
  4096,
  (64 << 10) - 21,
  (64 << 10) - 20,
  (64 << 10) - 19,
  64 << 10,
  (80 << 10) - 20,
  200_000,
  (1 << 20) - 20,
  1 << 20,
];
