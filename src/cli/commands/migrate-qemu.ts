import { migrateQemuGuest } from "../../qemu/migrate-qemu.js";
import { listPolicies } from "../../policy/registry.js";
import { parseHostPort, parseNumber, parseOptions } from "../args.js";
import { UsageError, type Command } from "../usage.js";

const MODES = ["precopy", "stop-and-copy"] as const;

const HELP = `usage: pagewire migrate-qemu --source-qmp SOCK --source-ram FILE --dest-ram FILE
                             --dest-qmp SOCK --incoming HOST:PORT [--dest-command CMD]
                             [--bandwidth MB/s] [--limit-final-round] [--mode M] [--policy NAME] [--termination T]
                             [--downtime MS] [--max-rounds N] [--scan-workers N] [--qmp-timeout S] [--json]

Live-migrates a QEMU guest whose RAM is a shared file (-object memory-backend-file,
share=on,mem-path=FILE -machine memory-backend=...) to a destination QEMU on this host:
pagewire copies the RAM file to the destination's RAM file in pre-copy rounds (dirty
pages by exact hash scan), pauses the source with QMP 'stop' for the final round, then
QEMU's own migration with the x-ignore-shared capability (set on both sides) carries only
the device state, and QMP 'cont' starts the destination. Any failure before that: the
source gets QMP 'cont' and keeps running, a destination started by --dest-command is killed.

  --source-qmp SOCK   the source QEMU's QMP unix socket (-qmp unix:SOCK,server=on,wait=off)
  --source-ram FILE   the source's RAM file (its mem-path)
  --dest-ram FILE     the destination's RAM file (its mem-path); created with the source's
                      size if missing, written in place (never truncated)
  --dest-qmp SOCK     the destination QEMU's QMP unix socket
  --incoming HOST:PORT
                      where the destination QEMU listens (-incoming tcp:HOST:PORT)
  --dest-command CMD  a shell command starting the destination QEMU (same command line as the
                      source but RAM on --dest-ram, -incoming, --dest-qmp); run once
                      --dest-ram exists. Without it the destination must already be waiting.
  --bandwidth MB/s    rate limit of the RAM pre-copy in MB/s (10^6 bytes); default unlimited.
                      As in QEMU, the final round (guest paused) runs at full speed
  --limit-final-round keep --bandwidth for the final round too
  --mode M            ${MODES.join(" or ")} (default precopy)
  --policy NAME       page-selection policy (default vanilla): ${listPolicies("selection")
    .map((p) => p.name)
    .join(", ")}
  --termination T     termination policy (default qemu): ${listPolicies("termination")
    .map((p) => p.name)
    .join(", ")}
  --downtime MS       downtime limit (default 300)
  --max-rounds N      pre-copy rounds at most (default 30)
  --scan-workers N    threads hash-scanning the source's RAM file at each round, the final one
                      (guest paused) included; default the cores available (at most 8)
  --qmp-timeout S     per QMP command, seconds (default 10)
  --json              print the result as JSON

Prints pagewire's report, then total time (start → destination running), downtime (QMP stop
on the source → destination running) and bytes sent (pagewire's plus QEMU's stream).
The source QEMU is left in state 'postmigrate'.
Exit 0 once the destination runs, 1 on failure (one line), 2 on usage errors.`;

export const migrateQemuCommand: Command = {
  name: "migrate-qemu",
  summary: "live-migrate a QEMU guest: RAM file by pagewire, device state by QEMU",
  help: HELP,
  async run(argv) {
    const o = parseOptions(argv, {
      "source-qmp": { type: "string" },
      "source-ram": { type: "string" },
      "dest-ram": { type: "string" },
      "dest-qmp": { type: "string" },
      incoming: { type: "string" },
      "dest-command": { type: "string" },
      "limit-final-round": { type: "boolean" },
      bandwidth: { type: "string" },
      mode: { type: "string" },
      policy: { type: "string" },
      termination: { type: "string" },
      downtime: { type: "string" },
      "max-rounds": { type: "string" },
      "scan-workers": { type: "string" },
      "qmp-timeout": { type: "string" },
      json: { type: "boolean" },
    });
    for (const k of ["source-qmp", "source-ram", "dest-ram", "dest-qmp"] as const) {
      if (!o[k]) throw new UsageError(`--${k} is required`);
    }
    const [host, port] = parseHostPort(o.incoming, "--incoming");
    const mode = (o.mode ?? "precopy") as (typeof MODES)[number];
    if (!MODES.includes(mode)) throw new UsageError(`--mode: '${o.mode}' is not one of ${MODES.join(", ")}`);
    for (const [kind, name] of [
      ["selection", o.policy],
      ["termination", o.termination],
    ] as const) {
      if (name && !listPolicies(kind).some((p) => p.name === name))
        throw new UsageError(`unknown ${kind} policy '${name}'`);
    }
    const scanWorkers =
      o["scan-workers"] === undefined ? undefined : parseNumber(o["scan-workers"], "--scan-workers", 1);
    if (scanWorkers !== undefined && (!Number.isInteger(scanWorkers) || scanWorkers > 64))
      throw new UsageError(`--scan-workers: '${o["scan-workers"]}' is not an integer in 1..64`);
    const result = await migrateQemuGuest({
      sourceQmp: o["source-qmp"]!,
      sourceRam: o["source-ram"]!,
      destRam: o["dest-ram"]!,
      destQmp: o["dest-qmp"]!,
      incoming: `tcp:${host.includes(":") ? `[${host}]` : host}:${port}`,
      destCommand: o["dest-command"],
      mode,
      maxBandwidth: parseNumber(o.bandwidth, "--bandwidth", Infinity) * 1e6,
      limitFinalRound: o["limit-final-round"],
      downtimeLimitMs: parseNumber(o.downtime, "--downtime", 300),
      maxRounds: parseNumber(o["max-rounds"], "--max-rounds", 30),
      scanWorkers,
      qmpTimeoutMs: parseNumber(o["qmp-timeout"], "--qmp-timeout", 10) * 1000,
      policy: { selection: o.policy, termination: o.termination },
      log: o.json ? undefined : (line) => console.error(`pagewire: ${line}`),
    });
    const r3 = (x: number) => Math.round(x * 1000) / 1000;
    if (o.json) {
      console.log(
        JSON.stringify({
          totalTime: r3(result.totalTime),
          downtime: r3(result.downtime),
          finalRoundTime: r3(result.finalRoundTime),
          finalScanTime: r3(result.finalScanTime),
          deviceTime: r3(result.deviceTime),
          bytesSent: result.bytesSent,
          pagewire: result.pagewire.toJSON(),
          qemu: result.qemu,
        }),
      );
    } else {
      console.log(result.pagewire.toTable());
      console.log("");
      const kv = (k: string, v: string) => console.log(`${k.padEnd(22)} ${v}`);
      kv(
        "qemu device state",
        `${result.qemu.ram?.transferred ?? 0} bytes in ${r3(result.deviceTime)} ms (stream + cont)`,
      );
      kv("total time", `${r3(result.totalTime)} ms (start → destination running)`);
      kv(
        "downtime",
        `${r3(result.downtime)} ms (stop → destination running; final round + commit ${r3(result.finalRoundTime)} ms, of which the scan of the RAM file ${r3(result.finalScanTime)} ms)`,
      );
      kv("sent", `${result.bytesSent} bytes (${(result.bytesSent / 2 ** 20).toFixed(1)} MiB)`);
    }
    return 0;
  },
};
