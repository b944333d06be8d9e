import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { MigrationInDoubtError } from "../../engine/ownership.js";
import { MigrationAbortedError, MigrationSource, type MigrationMode } from "../../engine/source.js";
import { PagewireError } from "../../errors.js";
import { loadKernel } from "../../kernel/loader.js";
import { FileMemory } from "../../memory/file-memory.js";
import { listPolicies } from "../../policy/registry.js";
import { connectTcp } from "../../transport/tcp.js";
import { parseHostPort, parseNumber, parseOptions, readKey } from "../args.js";
import { type GuestPause, guestPause, PauseCheck } from "../guest-pause.js";
import { parseDuration } from "../units.js";
import { UsageError, type Command } from "../usage.js";

/** How long send watches the file at the pause when nothing pauses its writer, ms. */
const CHECK_WINDOW_MS = 100;

const MODES: MigrationMode[] = ["precopy", "postcopy", "hybrid", "stop-and-copy", "auto"];

const HELP = `usage: pagewire send --memory FILE --to HOST:PORT [--bandwidth MB/s] [--mode M] [--policy NAME]
                     [--downtime MS] [--max-rounds N] [--key FILE] [--tls-ca FILE]
                     [--tls-cert FILE --tls-key FILE] [--json]
                     [--pid PID | --qmp SOCKET | --pause-cmd CMD --resume-cmd CMD]

Migrates the memory in FILE (a RAM file another process may be writing: dirty pages are
found by an exact hash scan each round) to a 'pagewire receive' on HOST:PORT. The final
round needs the writer stopped: give send a way to pause it (--pid, --qmp, --pause-cmd).
Without one, send watches the file for ${CHECK_WINDOW_MS} ms at the pause and until the final round is
sent (content re-scan, mtime): a file that still changes aborts the migration before the
decision (MEMORY_CHANGED); a writer idle for longer than that can go unnoticed.

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

pausing the process that writes FILE (one of):
  --pid PID         SIGSTOP it at the pause, SIGCONT it if the migration fails before
                    the decision. After a commit it stays stopped: the destination owns
                    the guest now (kill it; do not SIGCONT it)
  --qmp SOCKET      a QEMU guest: QMP 'stop' at the pause, 'cont' on a failure before the
                    decision; after a commit QEMU stays paused
  --pause-cmd CMD   a shell command (/bin/sh -c) run at the pause; a non-zero exit fails
                    the migration (its output goes to stderr)
  --resume-cmd CMD  run on a failure after the pause, before the decision (goes with --pause-cmd)

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
      pid: { type: "string" },
      qmp: { type: "string" },
      "pause-cmd": { type: "string" },
      "resume-cmd": { type: "string" },
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
    let guest: GuestPause | null = null;
    try {
      const pause = (guest = await guestPause(o));
      const file = o.memory;
      const hint = "pass --pid PID, --qmp SOCKET or --pause-cmd CMD --resume-cmd CMD so that send can stop its writer";
      // the file went on changing after the pause: what to tell, with or without a way to pause
      const changed = (detail: string, cause?: unknown) =>
        new PagewireError(
          "MEMORY_CHANGED",
          pause.what
            ? `${file} changed after the pause (${detail}): ${pause.what} did not stop every write to it`
            : `${file} changed while it was being sent (${detail}): another process keeps writing it and send cannot pause it; ${hint}`,
          { cause },
        );
      // nothing pauses the writer: watch the file a while at the pause (there is no downtime to keep short)
      const check = pause.verify ? new PauseCheck(file, pause.what ? 0 : CHECK_WINDOW_MS, changed) : null;
      const tls =
        o["tls-ca"] || o["tls-cert"]
          ? {
              ...(o["tls-ca"] ? { ca: readFileSync(o["tls-ca"]) } : {}),
              ...(o["tls-cert"] ? { cert: readFileSync(o["tls-cert"]), key: readFileSync(o["tls-key"]!) } : {}),
              ...(isIP(host) ? {} : { servername: host }), // SNI takes host names only
            }
          : undefined;
      const transport = await connectTcp(host, port, { tls });
      const log = mode === "stop-and-copy" ? undefined : memory.hashDirtyLog(k);
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
        dirtyLog: log && check ? check.wrap(log, k, memory.pageCount) : log,
        ...(check ? { deviceState: () => check.afterFinalRound() } : {}),
        policy: { selection: o.policy, termination: o.termination },
        onPause: async () => {
          await pause.onPause();
          check?.atPause();
        },
        onResume: () => pause.onResume(),
      });
      try {
        const report = await source.migrate();
        console.log(o.json ? JSON.stringify(report.toJSON()) : report.toTable());
        const note = pause.committedNote();
        if (note) console.error(`pagewire send: ${note}`);
        return 0;
      } catch (err) {
        // the destination's copy differs from the file: it was written after the scan that the digest covers
        if (err instanceof MigrationAbortedError && (err.cause as PagewireError)?.code === "DIGEST_MISMATCH")
          throw changed("the destination's digest differs from the source's", err);
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
      guest?.close();
    }
  },
};
