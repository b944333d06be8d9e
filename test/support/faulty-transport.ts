import { FRAME_HEADER_BYTES } from "../../src/wire/frame.js";
import type { Transport } from "../../src/transport/transport.js";

export type Fault = "drop" | "flip" | "truncate" | "replay" | "kill";

/**
 * Wraps a transport and injects one fault into the first outgoing frame for which
 * `when(type, index)` is true: drop the connection, flip a byte, cut the frame short,
 * send it twice, or "kill" the peer (close without a word, as a dead process would).
 */
export function faulty(
  inner: Transport,
  fault: Fault,
  when: (type: number, index: number) => boolean,
): Transport & { fired: boolean } {
  let index = 0;
  const t = {
    fired: false,
    get bytesSent() {
      return inner.bytesSent;
    },
    get bytesReceived() {
      return inner.bytesReceived;
    },
    async send(frame: Uint8Array) {
      const type = frame[5];
      if (!t.fired && when(type, index++)) {
        t.fired = true;
        switch (fault) {
          case "drop":
          case "kill":
            inner.close();
            return;
          case "flip": {
            const f = frame.slice();
            f[FRAME_HEADER_BYTES + Math.floor((f.length - FRAME_HEADER_BYTES) / 2)] ^= 0x10;
            return inner.send(f);
          }
          case "truncate":
            return inner.send(frame.slice(0, frame.length - 3));
          case "replay":
            await inner.send(frame.slice());
            return inner.send(frame);
        }
      }
      return inner.send(frame);
    },
    receive: () => inner.receive(),
    close: () => inner.close(),
  };
  return t;
}
