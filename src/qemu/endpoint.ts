// Where a QEMU migration stream flows between QEMU and the proxy: QEMU's own URI forms
// "tcp:HOST:PORT" and "unix:PATH".
import net from "node:net";
import { PagewireError } from "../errors.js";

export type QemuEndpoint = { host: string; port: number } | { path: string };

/** Reads "tcp:HOST:PORT" or "unix:PATH" (QEMU's migrate / -incoming syntax). */
export function parseEndpoint(uri: string): QemuEndpoint {
  if (uri.startsWith("unix:") && uri.length > 5) return { path: uri.slice(5) };
  const m = /^tcp:(\[[^\]]+\]|[^:]+):(\d+)$/.exec(uri);
  if (m && Number(m[2]) <= 65535) return { host: m[1].replace(/^\[|\]$/g, ""), port: Number(m[2]) };
  throw new PagewireError("USAGE", `'${uri}' is not a QEMU migration address: use tcp:HOST:PORT or unix:PATH`);
}

/** The URI QEMU's `migrate` takes for a listening endpoint (the bound port when it was 0). */
export function endpointUri(e: QemuEndpoint, server?: net.Server): string {
  if ("path" in e) return `unix:${e.path}`;
  const port = server ? (server.address() as net.AddressInfo).port : e.port;
  return `tcp:${e.host.includes(":") ? `[${e.host}]` : e.host}:${port}`;
}

export function listenEndpoint(e: QemuEndpoint): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer({ noDelay: true });
    server.once("error", (err) =>
      reject(new PagewireError("LISTEN_FAILED", `cannot listen on ${endpointUri(e)}: ${err.message}`, { cause: err })),
    );
    const done = () => resolve(server);
    if ("path" in e) server.listen(e.path, done);
    else server.listen(e.port, e.host, done);
  });
}

export function connectEndpoint(e: QemuEndpoint, timeoutMs = 10_000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = "path" in e ? net.connect(e.path) : net.connect(e.port, e.host);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new PagewireError("CONNECT_FAILED", `${endpointUri(e)} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    s.once("connect", () => {
      clearTimeout(timer);
      s.setNoDelay(true);
      resolve(s);
    });
    s.once("error", (err) => {
      clearTimeout(timer);
      reject(new PagewireError("CONNECT_FAILED", `cannot reach ${endpointUri(e)}: ${err.message}`, { cause: err }));
    });
  });
}
