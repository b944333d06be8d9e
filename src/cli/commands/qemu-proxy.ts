import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { parseEndpoint } from "../../qemu/endpoint.js";
import { proxyQemuDestination } from "../../qemu/proxy-destination.js";
import { proxyQemuSource } from "../../qemu/proxy-source.js";
import { parseHostPort, parseNumber, parseOptions, readKey } from "../args.js";
import { UsageError, type Command } from "../usage.js";

const HELP = `usage: pagewire qemu-proxy send --listen tcp:HOST:PORT|unix:PATH --to HOST:PORT
                             [--bandwidth MB/s] [--limit-final-round] [--channels N]
                             [--key FILE] [--tls-ca FILE] [--tls-cert FILE --tls-key FILE] [--json]
       pagewire qemu-proxy receive --listen HOST:PORT --incoming tcp:HOST:PORT|unix:PATH --qmp SOCK
                             (--key FILE | --tls-client-ca FILE | --insecure)
                             [--tls-cert FILE --tls-key FILE] [--channels N] [--json]

Carries a QEMU live migration over pagewire: QEMU keeps its dirty log, convergence rule and
downtime; pagewire changes only what crosses the network (zero, unchanged since last sent,
dedup, XBZRLE, RLE; keys, TLS, channels). Pre-copy only (QEMU 7.2 stream format).

On the source host:  pagewire qemu-proxy send --listen unix:/run/pw.sock --to DEST:4450
  then in the source QEMU's QMP:
    migrate-set-capabilities capabilities=[{"capability":"return-path","state":true}]
    migrate uri=unix:/run/pw.sock        (max-bandwidth may stay unlimited: the proxy paces it)
On the destination host: start QEMU with -S -incoming tcp:127.0.0.1:4444 (or unix:), then
  pagewire qemu-proxy receive --listen 0.0.0.0:4450 --incoming tcp:127.0.0.1:4444 --qmp /run/dst.qmp

The source QEMU counts its migration done only when pagewire commits (its return path gets
SHUT then); any failure before that fails QEMU's migrate and its guest runs on. The
destination QEMU loads the rebuilt stream paused (-S) and runs at pagewire's activation
(QMP cont). Refused with a reason: postcopy-ram, multifd, compress, x-ignore-shared, block
migration, another stream version, a source without return-path.

  --listen            send: where QEMU's migrate connects; receive: pagewire's listener
  --to HOST:PORT      send: the receiving proxy
  --incoming URI      receive: the destination QEMU's -incoming address
  --qmp SOCK          receive: the destination QEMU's QMP socket (run state checks, cont)
  --bandwidth MB/s    link rate limit in MB/s (10^6 bytes), lifted once QEMU stops its guest
                      (as QEMU lifts max-bandwidth); default unlimited
  --limit-final-round keep --bandwidth after QEMU stopped its guest too
  --channels N        data channels (Workers and connections) besides the control connection
  --key FILE          pre-shared key (≥ 16 bytes): HMAC-SHA256 on every frame
  --tls-ca FILE       send: connect with TLS, trusting this CA (PEM)
  --tls-cert/--tls-key  send: client certificate; receive: serve TLS with them
  --tls-client-ca FILE  receive: require a client certificate signed by this CA
  --insecure          receive: accept a sender without --key or a client certificate
  --json              print the result as JSON

Prints 'listening on URI' (stderr) once ready, the result when the destination runs.
Exit 0 once the destination QEMU runs, 1 on failure (one line), 2 on usage errors.`;

function pem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UsageError(`${what}: cannot read ${file}: ${(err as Error).message}`);
  }
}

const MiB = 2 ** 20;

export const qemuProxyCommand: Command = {
  name: "qemu-proxy",
  summary: "carry a QEMU live migration over pagewire (send on the source host, receive on the destination)",
  help: HELP,
  async run(argv) {
    const [role, ...rest] = argv;
    if (role !== "send" && role !== "receive") throw new UsageError("qemu-proxy: say 'send' or 'receive' first");
    const o = parseOptions(rest, {
      listen: { type: "string" },
      to: { type: "string" },
      incoming: { type: "string" },
      qmp: { type: "string" },
      bandwidth: { type: "string" },
      "limit-final-round": { type: "boolean" },
      channels: { type: "string" },
      key: { type: "string" },
      "tls-ca": { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      "tls-client-ca": { type: "string" },
      insecure: { type: "boolean" },
      json: { type: "boolean" },
    });
    if (!o.listen) throw new UsageError("--listen is required");
    if (!!o["tls-cert"] !== !!o["tls-key"]) throw new UsageError("--tls-cert and --tls-key go together");
    const key = readKey(o.key);
    const count = o.channels === undefined ? 0 : parseNumber(o.channels, "--channels", 0);
    if (!Number.isInteger(count) || count < 0 || count > 16) throw new UsageError("--channels: 0 to 16");
    const note = (line: string) => console.error(`pagewire qemu-proxy ${role}: ${line}`);
    if (role === "send") {
      const [host, port] = parseHostPort(o.to, "--to");
      const tls =
        o["tls-ca"] || o["tls-cert"]
          ? {
              ...(o["tls-ca"] ? { ca: pem(o["tls-ca"], "--tls-ca") } : {}),
              ...(o["tls-cert"]
                ? { cert: pem(o["tls-cert"], "--tls-cert"), key: pem(o["tls-key"]!, "--tls-key") }
                : {}),
              ...(isIP(host) ? {} : { servername: host }),
            }
          : undefined;
      const r = await proxyQemuSource({
        listen: parseEndpoint(o.listen),
        to: { host, port, tls },
        key,
        maxBandwidth: parseNumber(o.bandwidth, "--bandwidth", Infinity) * 1e6,
        limitFinalRound: o["limit-final-round"],
        channels: count ? { count, tcp: { host, tls } } : undefined,
        onListening: (uri) => note(`listening on ${uri}`),
        log: o.json ? undefined : note,
      });
      if (o.json) console.log(JSON.stringify({ ...r, report: r.report.toJSON() }));
      else {
        console.log(r.report.toTable());
        console.log("");
        console.log(
          `QEMU stream ${(r.stream.bytes / MiB).toFixed(1)} MiB (${r.stream.records} RAM records, ${r.stream.unchanged} unchanged) → pagewire ${(r.bytesSent / MiB).toFixed(1)} MiB on the network`,
        );
      }
      return 0;
    }
    const [host, port] = parseHostPort(o.listen, "--listen");
    if (!o.incoming) throw new UsageError("--incoming is required");
    if (!o.qmp) throw new UsageError("--qmp is required (the destination QEMU's QMP socket)");
    if (!key && !o["tls-client-ca"] && !o.insecure)
      throw new UsageError(
        "no --key: any process that can connect could feed the destination QEMU; give --key FILE or --tls-client-ca FILE, or --insecure to accept anyone",
      );
    const tls = o["tls-cert"]
      ? {
          cert: pem(o["tls-cert"], "--tls-cert"),
          key: pem(o["tls-key"]!, "--tls-key"),
          ...(o["tls-client-ca"]
            ? { requestCert: true, rejectUnauthorized: true, ca: pem(o["tls-client-ca"], "--tls-client-ca") }
            : {}),
        }
      : undefined;
    const r = await proxyQemuDestination({
      listen: { host, port, tls },
      incoming: parseEndpoint(o.incoming),
      qmp: o.qmp,
      key,
      channels: count ? { count, tcp: { host, tls } } : undefined,
      onListening: (p) => note(`listening on ${host}:${p}`),
      log: o.json ? undefined : note,
    });
    const summary = {
      pagesReceived: r.result.pagesReceived,
      bytesReceived: r.result.bytesReceived,
      recoveries: r.result.recoveries,
      stream: r.stream,
      machine: r.head.machine,
    };
    console.log(o.json ? JSON.stringify(summary) : `destination QEMU running: ${JSON.stringify(summary)}`);
    return 0;
  },
};
