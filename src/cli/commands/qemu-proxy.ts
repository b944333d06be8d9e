import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { parseEndpoint } from "../../qemu/endpoint.js";
import { proxyQemuDestination } from "../../qemu/proxy-destination.js";
import { proxyQemuSource } from "../../qemu/proxy-source.js";
import { parseHostPort, readKey } from "../args.js";
import { defineCommand } from "../command.js";
import type { ProgressMode } from "../migration-progress.js";
import { UsageError } from "../usage.js";
import { formatBytes } from "../units.js";
import { watchMigration } from "../watch-migration.js";

function pem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UsageError(`${what}: cannot read ${file}: ${(err as Error).message}`);
  }
}

const MiB = 2 ** 20;

/** This process's CPU time since `since` (all its threads), ms. */
function cpuMs(since?: NodeJS.CpuUsage): { user: number; system: number } {
  const u = process.cpuUsage(since);
  return { user: Math.round(u.user / 1000), system: Math.round(u.system / 1000) };
}

// PAGEWIRE_TRACE=1: every log line and engine event on stderr with its wall-clock time (ms),
// to line up with QMP event timestamps (bench/qemu-migration.bench.ts --trace)
const trace = process.env.PAGEWIRE_TRACE
  ? (line: string) => process.stderr.write(`trace ${(performance.timeOrigin + performance.now()).toFixed(2)} ${line}\n`)
  : null;
const TRACED = ["round-start", "round-end", "pause", "prepared", "commit", "activate"] as const;
function traceEvents(hub: { on(type: string, fn: (e: unknown) => void): unknown }): void {
  if (trace) for (const type of TRACED) hub.on(type, (e) => trace(`${type} ${JSON.stringify(e)}`));
}

export const qemuProxyCommand = defineCommand({
  name: "qemu-proxy",
  summary: "carry a QEMU live migration over pagewire (send on the source host, receive on the destination)",
  usage: `usage: pagewire qemu-proxy send --listen tcp:HOST:PORT|unix:PATH --to HOST:PORT
                             [--bandwidth RATE] [--limit-final-round] [--qmp SOCKET] [--channels N]
                             [--key FILE] [--tls-ca FILE] [--tls-cert FILE --tls-key FILE]
                             [--json] [--progress HOW]
       pagewire qemu-proxy receive --listen HOST:PORT --incoming tcp:HOST:PORT|unix:PATH --qmp SOCKET
                             (--key FILE | --tls-client-ca FILE | --insecure)
                             [--tls-cert FILE --tls-key FILE] [--channels N] [--json] [--progress HOW]`,
  about: `Carries a QEMU live migration over pagewire: QEMU keeps its dirty log, convergence rule and
downtime; pagewire changes only what crosses the network (zero, unchanged since last sent,
dedup, XBZRLE, RLE; keys, TLS, channels). Pre-copy only (QEMU 7.2 stream format).

On the source host:  pagewire qemu-proxy send --listen unix:/run/pw.sock --to DEST:4450
  then in the source QEMU's QMP:
    migrate-set-capabilities capabilities=[{"capability":"return-path","state":true}]
    migrate uri=unix:/run/pw.sock        (max-bandwidth may stay unlimited: the proxy paces it)
  With --qmp SOCKET (a QMP socket of the source QEMU that no other client holds) the proxy
  sets one parameter while QEMU iterates: downtime-limit := yours × (pagewire's bytes on the
  link ÷ QEMU's bytes into the proxy) over the last second, never above yours. QEMU measures
  the proxy's intake of its raw stream as its bandwidth (more than the link carries, as
  pagewire sends fewer bytes), so it would stop with more dirty RAM than a direct migration
  over the link; scaled, it stops with what the link carries in your downtime-limit. QEMU's
  convergence rule still decides; your value is restored at the end. max-bandwidth is not
  touched. Without --qmp, QEMU's parameters are left as they are. (TCG guests on QEMU before
  9.0 can lose stores in QEMU's own dirty log — fixed upstream in 03bfc2188f —; with the
  lower limit that showed up more often in this project's runs: see README.)
On the destination host: start QEMU with -S -incoming tcp:127.0.0.1:4444 (or unix:), then
  pagewire qemu-proxy receive --listen 0.0.0.0:4450 --incoming tcp:127.0.0.1:4444 --qmp /run/dst.qmp

The source QEMU counts its migration done only when pagewire commits (its return path gets
SHUT then); any failure before that fails QEMU's migrate and its guest runs on. The
destination QEMU loads the rebuilt stream paused (-S) and runs at pagewire's activation
(QMP cont). Refused with a reason: postcopy-ram, multifd, compress, x-ignore-shared, block
migration, another stream version, a source without return-path.`,
  positionals: true,
  flags: {
    listen: {
      arg: "ADDRESS",
      help: "send: where QEMU's migrate connects (tcp:HOST:PORT or unix:PATH); receive: pagewire's listener (HOST:PORT)",
    },
    to: { help: "send: the receiving proxy" },
    incoming: { arg: "URI", help: "receive: the destination QEMU's -incoming address (tcp:HOST:PORT or unix:PATH)" },
    qmp: {
      help: "send: the source QEMU's QMP socket, optional (its downtime-limit scaled to the link while it iterates, restored at the end); receive: the destination QEMU's QMP socket (run state checks, cont)",
    },
    bandwidth: {
      help: "send: link rate limit, lifted once QEMU stops its guest, as QEMU lifts max-bandwidth",
    },
    "limit-final-round": { help: "keep --bandwidth after QEMU stopped its guest too" },
    channels: {},
    key: {},
    "tls-ca": { help: "send: connect with TLS, trusting this CA (PEM)" },
    "tls-cert": { help: "send: client certificate; receive: serve TLS with it (PEM, with --tls-key)" },
    "tls-key": {},
    "tls-client-ca": { help: "receive: require a client certificate signed by this CA (PEM)" },
    insecure: { help: "receive: accept a sender without --key or a client certificate" },
    json: {},
    progress: {},
  },
  epilogue: `Prints 'listening on URI' (stderr) once ready, the result when the destination runs.
PAGEWIRE_TRACE=1 in the environment: every log line and migration event on stderr with its
wall-clock time in ms (to line up with QMP event timestamps).
Exit 0 once the destination QEMU runs, 1 on failure (one line), 2 on usage errors.`,
  async run(o, positionals) {
    const [role, ...extra] = positionals;
    let listening: NodeJS.CpuUsage | undefined; // CPU time at 'listening on' (--json reports what the migration took)
    if ((role !== "send" && role !== "receive") || extra.length)
      throw new UsageError("qemu-proxy: say 'send' or 'receive' first");
    if (!o.listen) throw new UsageError("--listen is required");
    if (!!o["tls-cert"] !== !!o["tls-key"]) throw new UsageError("--tls-cert and --tls-key go together");
    const key = readKey(o.key);
    const count = o.channels;
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
      const watch = watchMigration("qemu-proxy send", o.progress as ProgressMode);
      const r = await proxyQemuSource({
        listen: parseEndpoint(o.listen),
        to: { host, port, tls },
        key,
        maxBandwidth: o.bandwidth ?? Infinity,
        limitFinalRound: o["limit-final-round"],
        qmp: o.qmp,
        channels: count ? { count, tcp: { host, tls } } : undefined,
        onListening: (uri) => {
          listening = process.cpuUsage();
          note(`listening on ${uri}`);
        },
        log: trace ?? (o.json ? undefined : note),
        signal: watch.signal,
        onSource: (s) => {
          watch.attachSource(s);
          traceEvents(s.events as never);
        },
      }).finally(() => watch.dispose());
      if (o.json) console.log(JSON.stringify({ ...r, report: r.report.toJSON(), cpuMs: cpuMs(listening) }));
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
    const watch = watchMigration("qemu-proxy receive", o.progress as ProgressMode);
    const r = await proxyQemuDestination({
      listen: { host, port, tls },
      incoming: parseEndpoint(o.incoming),
      qmp: o.qmp,
      key,
      channels: count ? { count, tcp: { host, tls } } : undefined,
      onListening: (p) => {
        listening = process.cpuUsage();
        note(`listening on ${host}:${p}`);
      },
      log: trace ?? (o.json ? undefined : note),
      signal: watch.signal,
      onDestination: (d) => {
        watch.attachDestination(d);
        traceEvents(d.events as never);
      },
    }).finally(() => watch.dispose());
    const summary = {
      pagesReceived: r.result.pagesReceived,
      bytesReceived: r.result.bytesReceived,
      recoveries: r.result.recoveries,
      stream: r.stream,
      machine: r.head.machine,
      ...(o.json ? { cpuMs: cpuMs(listening) } : {}),
    };
    console.log(
      o.json
        ? JSON.stringify(summary)
        : `destination QEMU running (machine ${summary.machine}): ${summary.pagesReceived} page records, ${formatBytes(summary.bytesReceived)} received${summary.recoveries ? `, ${summary.recoveries} reconnection(s)` : ""}; QEMU stream of ${formatBytes(r.stream.bytes)} written in ${r.stream.sections} RAM sections (${r.stream.records} page records)`,
    );
    return 0;
  },
});
