import { FrameQueue, TransportError, type Transport } from "./transport.js";

/** The structural subset of MessagePort (browser or node:worker_threads) this transport uses. */
export interface MessagePortLike {
  postMessage(message: unknown, transfer?: Transferable[] | readonly unknown[]): void;
  addEventListener?(type: "message" | "close", listener: (event: { data: unknown }) => void): void;
  on?(type: "message" | "close", listener: (data: unknown) => void): void;
  start?(): void;
  close(): void;
}

/**
 * A transport over a MessagePort (a MessageChannel end, a Worker): each frame is one
 * message, its buffer transferred (no copy). A `null` message closes the stream. Flow
 * control: the receiver returns the byte count of each frame it took (a number message);
 * a sender with more than `windowBytes` not yet taken waits, as a socket's sender would.
 *
 * No buffer pool (no `allocFrame`/`receiveInto`): a transferred buffer leaves this side
 * for good, so there is nothing to give back; the receiving side gets a fresh buffer per
 * frame from the structured clone, which Channel copies into its arena.
 */
export function messagePortTransport(port: MessagePortLike, options: { windowBytes?: number } = {}): Transport {
  const windowBytes = options.windowBytes ?? 32 << 20;
  const inbox = new FrameQueue();
  let closed = false;
  let ended = false;
  let gone = false;
  let unacked = 0; // bytes sent and not yet taken by the peer
  let credit: (() => void) | null = null;
  const wakeSender = () => {
    const w = credit;
    credit = null;
    w?.();
  };
  const onData = (data: unknown) => {
    if (data === null) (ended = true), inbox.end(), wakeSender();
    else if (typeof data === "number") (unacked -= data), wakeSender();
    else if (data instanceof Uint8Array) inbox.push(data);
    else inbox.fail(new TransportError("PORT_MESSAGE", `message port: unexpected message of type ${typeof data}`));
  };
  // a port closed under us without the peer's clean end (null) is a lost connection
  const onClose = () => {
    gone = true;
    wakeSender();
    if (!ended && !closed) inbox.fail(new TransportError("CONNECTION_LOST", "message port: closed by the peer"));
  };
  if (port.on) {
    port.on("message", onData);
    port.on("close", onClose);
  } else if (port.addEventListener) {
    port.addEventListener("message", (e) => onData(e.data));
    port.addEventListener("close", onClose);
    port.start?.();
  }
  const t: Transport & { bytesSent: number; bytesReceived: number } = {
    bytesSent: 0,
    bytesReceived: 0,
    async send(frame) {
      if (closed) throw new TransportError("CONNECTION_CLOSED", "message port: send after close");
      if (gone) throw new TransportError("CONNECTION_LOST", "message port: the peer closed it");
      t.bytesSent += frame.length;
      const own =
        frame.byteOffset === 0 &&
        frame.byteLength === frame.buffer.byteLength &&
        !(frame.buffer instanceof SharedArrayBuffer);
      const msg = own ? frame : frame.slice();
      unacked += msg.length;
      port.postMessage(msg, [msg.buffer]);
      while (unacked > windowBytes && !closed && !gone && !ended) await new Promise<void>((r) => (credit = r));
    },
    async receive() {
      const f = await inbox.next();
      if (f) {
        t.bytesReceived += f.length;
        if (!closed) port.postMessage(f.length);
      }
      return f;
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        port.postMessage(null);
      } catch {
        // the peer may be gone already
      }
      inbox.end();
      wakeSender();
      port.close();
    },
  };
  return t;
}
