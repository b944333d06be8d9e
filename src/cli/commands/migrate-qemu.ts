import { migrateQemuGuest } from "../../qemu/migrate-qemu.js";
import { parseHostPort } from "../args.js";
import { defineCommand } from "../command.js";
import type { ProgressMode } from "../migration-progress.js";
import { UsageError } from "../usage.js";
import { watchMigration } from "../watch-migration.js";

export const migrateQemuCommand = defineCommand({
  name: "migrate-qemu",
  summary: "live-migrate a QEMU guest: RAM file by pagewire, device state by QEMU",
  usage: `usage: pagewire migrate-qemu --source-qmp SOCKET --source-ram FILE --dest-ram FILE
                             --dest-qmp SOCKET --incoming HOST:PORT [--dest-command CMD]
                             [--bandwidth RATE] [--limit-final-round] [--mode MODE]
                             [--selection NAME] [--termination NAME] [--downtime-limit DURATION]
                             [--max-rounds N] [--scan-workers N] [--qmp-timeout DURATION]
                             [--json] [--progress HOW]`,
  about: `Live-migrates a QEMU guest whose RAM is a shared file (-object memory-backend-file,
share=on,mem-path=FILE -machine memory-backend=...) to a destination QEMU on this host:
pagewire copies the RAM file to the destination's RAM file in pre-copy rounds (dirty
pages by exact hash scan), pauses the source with QMP 'stop' for the final round, then
QEMU's own migration with the x-ignore-shared capability (set on both sides) carries only
the device state, and QMP 'cont' starts the destination. Any failure before that: the
source gets QMP 'cont' and keeps running, a destination started by --dest-command is killed.`,
  flags: {
    "source-qmp": { help: "the source QEMU's QMP unix socket (-qmp unix:SOCKET,server=on,wait=off)" },
    "source-ram": {},
    "dest-ram": {
      help: "the destination QEMU's RAM file (its mem-path); created with the source's size if missing, written in place (never truncated)",
    },
    "dest-qmp": {},
    incoming: { help: "where the destination QEMU listens (-incoming tcp:HOST:PORT)" },
    "dest-command": {
      help: "a shell command starting the destination QEMU (same command line as the source but RAM on --dest-ram, -incoming, --dest-qmp); run once --dest-ram exists. Without it the destination must already be waiting",
    },
    bandwidth: {
      help: "rate limit of the RAM pre-copy. As in QEMU, the final round (guest paused) runs at full speed",
    },
    "limit-final-round": {},
    mode: { values: () => ["precopy", "stop-and-copy"] },
    selection: { absent: "vanilla" },
    termination: { absent: "qemu" },
    "downtime-limit": {},
    "max-rounds": { default: "30" },
    "min-round": {},
    "scan-workers": {
      help: "threads hash-scanning the source's RAM file at each round, the final one (guest paused) included",
    },
    "qmp-timeout": {},
    json: {},
    progress: {},
  },
  epilogue: `Prints pagewire's report, then total time (start → destination running), downtime (QMP stop
on the source → destination running) and bytes sent (pagewire's plus QEMU's stream).
The source QEMU is left in state 'postmigrate'.
Exit 0 once the destination runs, 1 on failure (one line), 2 on usage errors.`,
  async run(o) {
    for (const k of ["source-qmp", "source-ram", "dest-ram", "dest-qmp"] as const) {
      if (!o[k]) throw new UsageError(`--${k} is required`);
    }
    const [host, port] = parseHostPort(o.incoming, "--incoming");
    const mode = o.mode as "precopy" | "stop-and-copy";
    const scanWorkers = o["scan-workers"];
    const watch = watchMigration("migrate-qemu", o.progress as ProgressMode);
    const result = await migrateQemuGuest({
      sourceQmp: o["source-qmp"]!,
      sourceRam: o["source-ram"]!,
      destRam: o["dest-ram"]!,
      destQmp: o["dest-qmp"]!,
      incoming: `tcp:${host.includes(":") ? `[${host}]` : host}:${port}`,
      destCommand: o["dest-command"],
      mode,
      maxBandwidth: o.bandwidth ?? Infinity,
      limitFinalRound: o["limit-final-round"],
      downtimeLimitMs: o["downtime-limit"] * 1000,
      maxRounds: o["max-rounds"],
      minRoundMs: o["min-round"] * 1000,
      scanWorkers,
      qmpTimeoutMs: o["qmp-timeout"] * 1000,
      policy: { selection: o.selection, termination: o.termination },
      log: o.json ? undefined : (line) => console.error(`pagewire: ${line}`),
      signal: watch.signal,
      onSource: (s) => watch.attachSource(s),
    }).finally(() => watch.dispose());
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
});
