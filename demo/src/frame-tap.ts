// A transport that shows the demo every frame passing it, both ways, before the frame is
// transferred away (send) or handed to the engine (receive). Only the header is read here
// (type, payload length); the engine checks checksums and sequence numbers as always.
import { FRAME_HEADER_BYTES } from "../../src/wire/frame.js";
import type { Transport } from "../../src/transport/transport.js";

export interface FrameWatcher {
  sent?(type: number, payload: Uint8Array, frameBytes: number): void;
  received?(type: number, payload: Uint8Array): void;
}

export function framePayload(frame: Uint8Array): { type: number; payload: Uint8Array } {
  const length = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(12, true);
  return { type: frame[5], payload: frame.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length) };
}

/** `t` with `watch` called on each frame; send/receive only, so the engine uses one frame per call. */
export function tapTransport(t: Transport, watch: FrameWatcher): Transport {
  return {
    send: async (frame) => {
      if (watch.sent) {
        const { type, payload } = framePayload(frame);
        watch.sent(type, payload, frame.byteLength);
      }
      return t.send(frame);
    },
    receive: async () => {
      const frame = await t.receive();
      if (frame && watch.received) {
        const { type, payload } = framePayload(frame);
        watch.received(type, payload);
      }
      return frame;
    },
    close: () => t.close(),
    get bytesSent() {
      return t.bytesSent;
    },
    get bytesReceived() {
      return t.bytesReceived;
    },
  };
}
