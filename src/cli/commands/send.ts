import { predictModes } from "../../sim/mode-prediction.js";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { MigrationInDoubtError } from "../../engine/ownership.js";
import { MigrationAbortedError, MigrationSource, type MigrationMode } from "../../engine/source.js";
import { PagewireError } from "../../errors.js";
import { loadKernel } from "../../kernel/loader.js";
import { FileMemory } from "../../memory/file-memory.js";
import { connectTcp } from "../../transport/tcp.js";
import { parseHostPort, readKey } from "../args.js";
import { defineCommand } from "../command.js";
import { type GuestPause, guestPause, PauseCheck } from "../guest-pause.js";
import type { ProgressMode } from "../migration-progress.js";
import { watchMigration } from "../watch-migration.js";
import { UsageError } from "../usage.js";

/** How long send watches the file at the pause when nothing pauses its writer, ms. */
const CHECK_WINDOW_MS = 100;

const PAUSE = "pausing the process that writes FILE (one of)";

export const sendCommand = defineCommand({
  name: "send",
  summary: "migrate a RAM file to a 'pagewire receive' over TCP",
  usage: `usage: pagewire send --memory FILE --to HOST:PORT [--bandwidth RATE] [--mode MODE]
                     [--selection NAME] [--termination NAME] [--downtime-limit DURATION]
                     [--max-rounds N] [--key FILE] [--tls-ca FILE] [--tls-cert FILE --tls-key FILE]
                     [--reconnect-window DURATION] [--json] [--progress HOW]
                     [--pid PID | --qmp SOCKET | --pause-cmd CMD --resume-cmd CMD]`,
  about: `Migrates the memory in FILE (a RAM file another process may be writing: dirty pages are
found by an exact hash scan each round) to a 'pagewire receive' on HOST:PORT. The final
round needs the writer stopped: give send a way to pause it (--pid, --qmp, --pause-cmd).
Without one, send watches the file for ${CHECK_WINDOW_MS} ms at the pause and until the final round is
sent (content re-scan, mtime): a file that still changes aborts the migration before the
decision (MEMORY_CHANGED); a writer idle for longer than that can go unnoticed.`,
  flags: {
    memory: { help: "guest memory (size a multiple of 4096)" },
    to: {},
    bandwidth: { help: "rate limit of the migration stream" },
    mode: {},
    selection: { absent: "vanilla" },
    termination: { absent: "qemu" },
    "downtime-limit": {},
    "max-rounds": { default: "30" },
    "min-round": {},
    key: {},
    "tls-ca": {},
    "tls-cert": {
      help: "with --tls-key: connect with TLS, presenting this client certificate (PEM; for a receiver started with --tls-client-ca)",
    },
    "tls-key": {},
    "reconnect-window": {
      help: "after a lost connection, keep trying to reach the receiver this long to settle the migration",
    },
    json: { help: "print the report as JSON" },
    progress: {},
    pid: {
      group: PAUSE,
      help: "SIGSTOP it at the pause, SIGCONT it if the migration fails before the decision. After a commit it stays stopped: the destination owns the guest now (kill it; do not SIGCONT it)",
    },
    qmp: {
      group: PAUSE,
      help: "a QEMU guest's QMP socket: 'stop' at the pause, 'cont' on a failure before the decision; after a commit QEMU stays paused",
    },
    "pause-cmd": {
      group: PAUSE,
      help: "a shell command (/bin/sh -c) run at the pause; a non-zero exit fails the migration (its output goes to stderr)",
    },
    "resume-cmd": {
      group: PAUSE,
      help: "run on a failure after the pause, before the decision (goes with --pause-cmd)",
    },
  },
  epilogue: `A connection lost after the sender decided to commit (or switched to post-copy) is
repaired by connecting again; if that fails within the window the migration is in
doubt: the source guest must stay stopped, and the receiver settles it with
'pagewire resolve'.

Exit 0 on commit, 1 on failure (one line), 2 on usage errors, 3 in doubt.`,
  async run(o) {
    if (!o.memory) throw new UsageError("--memory FILE is required");
    const [host, port] = parseHostPort(o.to, "--to");
    const mode = o.mode as MigrationMode;
    const bandwidth = o.bandwidth ?? Infinity;
    const downtimeLimitMs = o["downtime-limit"] * 1000;
    const maxRounds = o["max-rounds"];
    const key = readKey(o.key);
    const reconnectWindow = o["reconnect-window"];
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
        minRoundMs: o["min-round"] * 1000,
        // auto: replay the probe in the simulator for each mode and take the best prediction
        ...(mode === "auto" ? { auto: { predictor: predictModes } } : {}),
        reconnect: () => connectTcp(host, port, { tls }),
        timeouts: { reconnectWindow },
        dirtyLog: log && check ? check.wrap(log, k, memory.pageCount) : log,
        ...(check ? { deviceState: () => check.afterFinalRound() } : {}),
        policy: { selection: o.selection, termination: o.termination },
        onPause: async () => {
          await pause.onPause();
          check?.atPause();
        },
        onResume: () => pause.onResume(),
      });
      try {
        const watch = watchMigration("send", o.progress as ProgressMode);
        watch.attachSource(source);
        const report = await source.migrate({ signal: watch.signal }).finally(() => watch.dispose());
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
});
