import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { MigrationInDoubtError } from "../../engine/ownership.js";
import { MigrationSource, type MigrationMode } from "../../engine/source.js";
import { loadKernel } from "../../kernel/loader.js";
import { FileMemory } from "../../memory/file-memory.js";
import { listPolicies } from "../../policy/registry.js";
import { connectTcp } from "../../transport/tcp.js";
import { parseHostPort, parseNumber, parseOptions, readKey } from "../args.js";
import { parseDuration } from "../units.js";
import { UsageError, type Command } from "../usage.js";

const MODES: MigrationMode[] = ["precopy", "postcopy", "hybrid", "stop-and-copy", "auto"];

const HELP = `usage: pagewire send --memory FILE --to HOST:PORT [--bandwidth MB/s] [--mode M] [--policy NAME]
                     [--downtime MS] [--max-rounds N] [--key FILE] [--tls-ca FILE]
                     [--tls-cert FILE --tls-key FILE] [--json]

Migrates the memory in FILE (a RAM file another process may be writing: dirty pages are
found by an exact hash scan each round) to a 'pagewire receive' on HOST:PORT.

  --memory FILE     guest memory (size a multiple of 4096)
  --to HOST:PORT    the receiver
  --bandwidth MB/s  rate limit in MB/s (10^6 bytes); default unlimited
  --mode M          ${MODES.join(", ")} (default precopy)
  --policy NAME     page-selection policy (default vanilla): ${listPolicies("selection")
    .map((p) => p.name)
    .join(", ")}
  --termination T   termination policy (default qemu): ${listPolicies("termination")
    .map((p) => p.name)
    .join(", ")}
  --downtime MS     downtime limit (default 300)
  --max-rounds N    pre-copy rounds at most (default 30)
  --key FILE        pre-shared key (≥ 16 bytes): HMAC-SHA256 on every frame
  --tls-ca FILE     connect with TLS, trusting this CA (PEM)
  --tls-cert FILE   with --tls-key FILE: connect with TLS, presenting this client
                    certificate (PEM; for a receiver started with --tls-client-ca)
  --reconnect-window S  after a lost connection, keep trying to reach the receiver for S
                    seconds to settle the migration (default 30)
  --json            print the report as JSON

A connection lost after the sender decided to commit (or switched to post-copy) is
repaired by connecting again; if that fails within the window the migration is in
doubt: the source guest must stay stopped, and the receiver settles it with
'pagewire resolve'.

Exit 0 on commit, 1 on failure (one line), 2 on usage errors, 3 in doubt.`;

export const sendCommand: Command = {
  name: "send",
  summary: "migrate a RAM file to a 'pagewire receive' over TCP",
  help: HELP,
  async run(argv) {
    const o = parseOptions(argv, {
      memory: { type: "string" },
      to: { type: "string" },
      bandwidth: { type: "string" },
      mode: { type: "string" },
      policy: { type: "string" },
      termination: { type: "string" },
      downtime: { type: "string" },
      "max-rounds": { type: "string" },
      key: { type: "string" },
      "tls-ca": { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      "reconnect-window": { type: "string" },
      json: { type: "boolean" },
    });
    if (!o.memory) throw new UsageError("--memory FILE is required");
    const [host, port] = parseHostPort(o.to, "--to");
    const mode = (o.mode ?? "precopy") as MigrationMode;
    if (!MODES.includes(mode)) throw new UsageError(`--mode: '${o.mode}' is not one of ${MODES.join(", ")}`);
    for (const [kind, name] of [
      ["selection", o.policy],
      ["termination", o.termination],
    ] as const) {
      if (name && !listPolicies(kind).some((p) => p.name === name))
        throw new UsageError(`unknown ${kind} policy '${name}'`);
    }
    const bandwidth = parseNumber(o.bandwidth, "--bandwidth", Infinity) * 1e6;
    const downtimeLimitMs = parseNumber(o.downtime, "--downtime", 300);
    const maxRounds = parseNumber(o["max-rounds"], "--max-rounds", 30);
    const key = readKey(o.key);
    const reconnectWindow =
      o["reconnect-window"] === undefined ? 30 : parseDuration(o["reconnect-window"], "--reconnect-window");
    if (!!o["tls-cert"] !== !!o["tls-key"]) throw new UsageError("--tls-cert and --tls-key go together");
    const k = await loadKernel();
    const memory = FileMemory.open(o.memory);
    try {
      const tls =
        o["tls-ca"] || o["tls-cert"]
          ? {
              ...(o["tls-ca"] ? { ca: readFileSync(o["tls-ca"]) } : {}),
              ...(o["tls-cert"] ? { cert: readFileSync(o["tls-cert"]), key: readFileSync(o["tls-key"]!) } : {}),
              ...(isIP(host) ? {} : { servername: host }), // SNI takes host names only
            }
          : undefined;
      const transport = await connectTcp(host, port, { tls });
      const source = new MigrationSource({
        kernel: k,
        memory,
        transport,
        mode,
        key,
        maxBandwidth: bandwidth,
        downtimeLimitMs,
        maxRounds,
        reconnect: () => connectTcp(host, port, { tls }),
        timeouts: { reconnectWindow },
        dirtyLog: mode === "stop-and-copy" ? undefined : memory.hashDirtyLog(k),
        policy: { selection: o.policy, termination: o.termination },
      });
      try {
        const report = await source.migrate();
        console.log(o.json ? JSON.stringify(report.toJSON()) : report.toTable());
        return 0;
      } catch (err) {
        if (!(err instanceof MigrationInDoubtError)) throw err;
        // the guest must not run here again until the receiver's side is known
        const what =
          err.decision === "commit"
            ? "committed: the receiver must commit ('pagewire resolve --out FILE --commit')"
            : "switched to post-copy: the receiver holds the guest";
        console.error(`pagewire: in doubt (${what}): ${err.message}`);
        if (o.json) console.log(JSON.stringify(source.report.toJSON()));
        return 3;
      }
    } finally {
      memory.close();
    }
  },
};
