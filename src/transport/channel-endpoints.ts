// How a data channel's connection is made, described so that it can be posted to the
// channel's Worker (a socket cannot move between threads: each worker opens its own).
// TCP: the destination's channel worker listens on a port of its own and the source's
// connects to it on the control connection's host; in process: a MessagePort pair.
import { messagePortTransport, type MessagePortLike } from "./message-port.js";
import type { TcpOptions } from "./tcp.js";
import type { Transport } from "./transport.js";

/** How the source side of one channel connects. */
export type ChannelDial =
  | { kind: "tcp"; host: string; port: number; tls?: TcpOptions["tls"]; maxPayload?: number }
  | { kind: "port"; port: MessagePortLike };

/** How the destination side of one channel is reached. */
export type ChannelListen =
  | { kind: "tcp"; host: string; tls?: TcpOptions["tls"]; maxPayload?: number }
  | { kind: "port"; port: MessagePortLike };

/** A destination channel's connections, as they come (the first that joins the session wins). */
export interface ChannelAcceptor {
  /** TCP: the port the source connects to. */
  readonly port?: number;
  accept(): Promise<Transport>;
  close(): void;
}

export async function dialChannel(d: ChannelDial): Promise<Transport> {
  if (d.kind === "port") return messagePortTransport(d.port);
  const { connectTcp } = await import("./tcp.js");
  return connectTcp(d.host, d.port, { tls: d.tls, maxPayload: d.maxPayload });
}

export async function listenChannel(l: ChannelListen): Promise<ChannelAcceptor> {
  if (l.kind === "port") {
    let taken = false;
    const t = messagePortTransport(l.port);
    return {
      accept: () => (taken ? new Promise<Transport>(() => {}) : ((taken = true), Promise.resolve(t))),
      close() {},
    };
  }
  const { TcpListener } = await import("./tcp.js");
  const listener = await TcpListener.listen(l.host, 0, { tls: l.tls, maxPayload: l.maxPayload });
  return { port: listener.port, accept: () => listener.accept(), close: () => listener.close() };
}
