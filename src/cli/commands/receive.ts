import { accessSync, constants, existsSync, lstatSync, readFileSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { MigrationDestination, type DestinationResult } from "../../engine/destination.js";
import { MigrationInDoubtError } from "../../engine/ownership.js";
import { PagewireError } from "../../errors.js";
import { PAGE_SIZE, type Kernel } from "../../kernel/kernel.js";
import { createKernel } from "../../kernel/loader.js";
import { lockFile } from "../../memory/file-lock.js";
import { FileMemory, inDoubtPath } from "../../memory/file-memory.js";
import { TcpListener, type TcpTransport } from "../../transport/tcp.js";
import type { FrameSink, Transport } from "../../transport/transport.js";
import type { FrameKey } from "../../wire/frame.js";
import { parseHostPort, readKey } from "../args.js";
import { defineCommand } from "../command.js";
import { formatBytes } from "../units.js";
import { type ProgressMode, showDestinationProgress } from "../migration-progress.js";
import { UsageError } from "../usage.js";

/** Exit code of a migration left in doubt (see `pagewire resolve`). */
export const EXIT_IN_DOUBT = 3;
/** After SIGINT/SIGTERM, how long the destination may take to abort before the process exits anyway. */
const STOP_GRACE_MS = 2000;

export const receiveCommand = defineCommand({
  name: "receive",
  summary: "receive one migration over TCP into a file (written only on commit)",
  usage: `usage: pagewire receive --listen HOST:PORT --out FILE
                        (--key FILE | --tls-client-ca FILE | --insecure) [--force]
                        [--max-memory SIZE] [--tls-cert FILE --tls-key FILE]
                        [--handshake-timeout DURATION] [--max-pending N]
                        [--reconnect-window DURATION] [--json] [--progress HOW]`,
  about: `Waits for one migration on HOST:PORT and writes the received memory to FILE. FILE is
written only on commit: the memory goes to a temporary file beside it (random name,
created exclusively, mode 0600), renamed after the whole-memory digest was verified; a
failed or interrupted (SIGINT/SIGTERM) migration leaves no FILE and no temporary.

Connections are accepted until one sends a HELLO that verifies (with --key: its HMAC);
that sender gets the session and the listener closes. Others (wrong key, garbage, no
HELLO within the handshake timeout) are closed, one line each on stderr.`,
  flags: {
    listen: {},
    out: { help: "where the memory goes; checked and locked (.FILE.lock) before listening" },
    key: { help: "pre-shared key (≥ 16 bytes): every frame must carry its HMAC" },
    "tls-cert": { help: "serve TLS with this certificate (PEM), with --tls-key" },
    "tls-key": {},
    "tls-client-ca": {},
    insecure: {},
    force: {},
    "max-memory": {},
    "handshake-timeout": {},
    "max-pending": {},
    "reconnect-window": {
      help: "after a lost connection, how long to wait for the sender to come back and settle the migration",
    },
    json: { help: "print the result as JSON" },
    progress: {},
  },
  epilogue: `A connection lost after this side acknowledged the commit is not a failure: the sender
comes back (within the window) and says whether it committed. If it does not, the
migration is in doubt: the memory is kept in FILE.in-doubt, the exit code is 3, and
'pagewire resolve --out FILE --commit' (or --abort) settles it once the sender's
outcome is known.

Exit 0 on commit, 1 on failure (one line), 2 on usage errors, 3 in doubt, 130/143 on
SIGINT/SIGTERM.`,
  async run(o) {
    const [host, port] = parseHostPort(o.listen, "--listen");
    if (!o.out) throw new UsageError("--out FILE is required");
    if (!!o["tls-cert"] !== !!o["tls-key"]) throw new UsageError("--tls-cert and --tls-key go together");
    if (o["tls-client-ca"] && !o["tls-cert"]) throw new UsageError("--tls-client-ca needs --tls-cert and --tls-key");
    const key = readKey(o.key);
    if (!key && !o["tls-client-ca"] && !o.insecure) {
      throw new UsageError(
        "no --key: any process that can connect could write --out; give --key FILE or --tls-client-ca FILE, or --insecure to accept anyone",
      );
    }
    const maxMemory = o["max-memory"];
    if (maxMemory < PAGE_SIZE)
      throw new UsageError(`--max-memory: ${maxMemory} bytes is less than one page (${PAGE_SIZE})`);
    const handshakeSeconds = o["handshake-timeout"];
    if (!(handshakeSeconds > 0)) throw new UsageError("--handshake-timeout must be > 0");
    const reconnectWindow = o["reconnect-window"];
    const maxPending = o["max-pending"];
    const tls = o["tls-cert"]
      ? {
          cert: readPem(o["tls-cert"], "--tls-cert"),
          key: readPem(o["tls-key"]!, "--tls-key"),
          handshakeTimeout: handshakeSeconds * 1000,
          ...(o["tls-client-ca"]
            ? { requestCert: true, rejectUnauthorized: true, ca: readPem(o["tls-client-ca"], "--tls-client-ca") }
            : {}),
        }
      : undefined;
    const out = o.out;
    const force = !!o.force;

    // everything about --out is settled before anyone can connect
    checkOutput(out, force);
    const lock = lockFile(out);
    let memory: FileMemory | null = null;
    const cleanup = () => {
      memory?.discardSync();
      lock.release();
    };
    // main() ends with process.exit(): the exit handler runs on every path out
    process.on("exit", cleanup);
    // A signal during a session makes the destination fail as on any error: it sends ABORT
    // (so a source waiting for its last word after COMMIT_ACK resumes the guest instead of
    // taking silence as success) and discards the temporary. Before a session, or if that
    // takes longer than STOP_GRACE_MS, or on a second signal, the process exits at once.
    let stopping: NodeJS.Signals | null = null;
    let interrupt: ((err: Error) => void) | null = null;
    const stopped = (signal: NodeJS.Signals) =>
      `receive stopped by ${signal}; ${(memory as FileMemory | null)?.committed ? `${out} was committed` : `nothing written to ${out}`}`;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping || !interrupt) {
        cleanup();
        console.error(`pagewire: ${stopped(signal)}`);
        process.exit(exitCodeFor(signal));
      }
      stopping = signal;
      interrupt(new PagewireError("INTERRUPTED", `receive stopped by ${signal}`));
      setTimeout(() => onSignal(signal), STOP_GRACE_MS).unref();
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    if (lock.staleOwner !== null) {
      const removed = FileMemory.removeTemporaries(out);
      note(
        `took over the lock of process ${lock.staleOwner} (no longer running)${removed.length ? `; removed its temporary ${removed.join(", ")}` : ""}`,
      );
    }
    if (o.insecure && !key && !o["tls-client-ca"])
      note(`warning: --insecure: any process that can connect can write ${out}`);

    try {
      const kernel = await createKernel(); // compiled before listening: a broken build fails here
      const listener = await TcpListener.listen(host, port, { tls });
      listener.server.maxConnections = maxPending;
      listener.server.on("drop", (d?: { remoteAddress?: string; remotePort?: number }) =>
        note(
          `${d?.remoteAddress}:${d?.remotePort}: refused: ${maxPending} connections already wait for their handshake`,
        ),
      );
      listener.server.on("tlsClientError", (err: Error, socket: { remoteAddress?: string; remotePort?: number }) =>
        note(`${socket.remoteAddress}:${socket.remotePort}: refused: TLS handshake failed: ${oneLine(err.message)}`),
      );
      console.error(`pagewire receive: listening on ${host}:${listener.port}`);
      let destination: MigrationDestination | null = null;
      let claimedAt = performance.now();
      let endProgress = () => {};
      const session = acceptSession(listener, {
        kernel,
        key,
        handshakeSeconds,
        reconnectWindow,
        onClaim: (stop, claimed) => {
          interrupt = stop;
          destination = claimed;
          claimedAt = performance.now();
          endProgress = showDestinationProgress(claimed, o.progress as ProgressMode);
        },
        memory: (pages) => {
          if (pages * PAGE_SIZE > maxMemory) {
            throw new PagewireError(
              "MEMORY_TOO_LARGE",
              `source memory of ${pages * PAGE_SIZE} bytes (${pages} pages, ${formatBytes(pages * PAGE_SIZE)}) exceeds --max-memory ${maxMemory} bytes`,
            );
          }
          return (memory = FileMemory.createTemporary(out, pages, { replace: force }));
        },
      });
      let result: DestinationResult;
      try {
        result = await session.finally(() => endProgress());
      } catch (err) {
        if (err instanceof MigrationInDoubtError && !stopping) {
          // neither side may run the guest: keep what was received for `pagewire resolve`
          const missing = (destination as MigrationDestination | null)?.missingPages ?? 0;
          const kept = (memory as FileMemory | null)?.keepInDoubt({ missingPages: missing, reason: err.message });
          console.error(`pagewire: in doubt: ${oneLine(err.message)}`);
          console.error(
            kept
              ? `pagewire: the received memory is kept in ${kept}${missing ? ` (${missing} pages missing: only the sender can complete it)` : ""}; once the sender says how it ended, run 'pagewire resolve --out ${out} --commit' (it committed) or '--abort'`
              : `pagewire: nothing was received; the sender decides alone`,
          );
          return EXIT_IN_DOUBT;
        }
        if (!stopping) throw err;
        console.error(`pagewire: ${stopped(stopping)}`);
        return exitCodeFor(stopping);
      }
      // committed (also when a signal came too late to stop the commit)
      const seconds = (performance.now() - claimedAt) / 1000;
      const summary = {
        committed: true,
        out,
        pages: result.pagesReceived,
        bytesReceived: result.bytesReceived,
        seconds: Math.round(seconds * 1000) / 1000,
        bytesPerSecond: seconds > 0 ? Math.round(result.bytesReceived / seconds) : 0,
        digest: result.digest,
        mode: result.mode,
        deviceStateBytes: result.deviceState.length,
      };
      console.log(
        o.json
          ? JSON.stringify(summary)
          : `committed ${out}: ${summary.pages} page records, ${formatBytes(summary.bytesReceived)} received in ${summary.seconds.toFixed(2)} s (${formatBytes(summary.bytesPerSecond)}/s), ${result.mode}, digest ${summary.digest}`,
      );
      return 0;
    } finally {
      (memory as FileMemory | null)?.close();
      cleanup();
      process.off("exit", cleanup);
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
  },
});

interface SessionOptions {
  kernel: Kernel;
  key: FrameKey | undefined;
  handshakeSeconds: number;
  /** Seconds the session's destination waits for its source to come back after a lost connection. */
  reconnectWindow: number;
  /** Called when a connection claims the session, with a function that makes its destination fail with the given error. */
  onClaim: (interrupt: (err: Error) => void, destination: MigrationDestination) => void;
  /** Called once, for the connection that claimed the session (its HELLO verified). */
  memory: (pageCount: number) => FileMemory;
}

/**
 * Accepts connections until one claims the session, and resolves or rejects with that
 * migration. A connection claims the session when the destination asks for memory: its
 * HELLO passed the frame checks (checksum, HMAC with a key). Then every other connection
 * in its handshake is dropped, and later connections go to the session's destination: a
 * source that lost its connection comes back with RESUME (which the destination checks).
 * Connections that fail before (bad key, garbage, no HELLO within the handshake timeout)
 * are closed and logged; the loop goes on. The listener closes when the session ends.
 */
function acceptSession(listener: TcpListener, o: SessionOptions): Promise<DestinationResult> {
  return new Promise((resolveSession, rejectSession) => {
    let claimed: TcpTransport | null = null;
    let spare: Kernel | null = o.kernel;
    /** Connections after the claim, for the session's destination (a source resuming). */
    const resumes: TcpTransport[] = [];
    const resumeWaiters: Array<(t: TcpTransport) => void> = [];
    const nextResume = (): Promise<Transport> => {
      const t = resumes.shift();
      return t ? Promise.resolve(t) : new Promise((resolve) => resumeWaiters.push(resolve));
    };
    /** Connections still in their handshake, with the reason they will be refused (once set). */
    const pending = new Map<TcpTransport, string | null>();

    const serve = async (t: TcpTransport): Promise<DestinationResult> => {
      // each connection has its own kernel instance: concurrent handshakes share no memory
      const kernel = spare ?? (await createKernel());
      spare = null;
      const transport = interruptible(t);
      const destination: MigrationDestination = new MigrationDestination({
        kernel,
        transport,
        key: o.key,
        accept: nextResume,
        timeouts: { reconnectWindow: o.reconnectWindow },
        memory: (pages) => {
          if (claimed) throw new PagewireError("SESSION_TAKEN", "another sender was accepted first");
          claimed = t;
          o.onClaim(transport.interrupt, destination);
          pending.delete(t);
          for (const other of pending.keys()) {
            pending.set(other, "another sender was accepted");
            other.destroy();
          }
          note(`${t.peer}: accepted`);
          return o.memory(pages);
        },
      });
      return destination.receive();
    };

    const start = (t: TcpTransport) => {
      if (claimed) {
        const w = resumeWaiters.shift();
        if (w) w(t);
        else resumes.push(t);
        return;
      }
      pending.set(t, null);
      const timer = setTimeout(() => {
        if (!pending.has(t)) return;
        pending.set(t, `no verified HELLO within ${o.handshakeSeconds} s`);
        t.destroy();
      }, o.handshakeSeconds * 1000);
      serve(t).then(
        (result) => {
          clearTimeout(timer);
          listener.close();
          resolveSession(result);
        },
        (err: unknown) => {
          clearTimeout(timer);
          if (claimed === t) {
            listener.close();
            for (const r of resumes.splice(0)) r.destroy();
            return rejectSession(err);
          }
          const reason = pending.get(t) ?? oneLine((err as Error)?.message ?? String(err));
          pending.delete(t);
          note(`${t.peer}: refused: ${reason}`);
        },
      );
    };

    void (async () => {
      // never ends: once the session ends the listener is closed and accept() stays pending
      for (;;) start(await listener.accept());
    })();
  });
}

/** A transport whose receive() can be made to fail from outside (pending and later calls). */
function interruptible(t: Transport): Transport & { interrupt(err: Error): void } {
  let interrupt!: (err: Error) => void;
  const interrupted = new Promise<never>((_, reject) => (interrupt = reject));
  interrupted.catch(() => {}); // observed through receive()
  return {
    get bytesSent() {
      return t.bytesSent;
    },
    get bytesReceived() {
      return t.bytesReceived;
    },
    send: (frame) => t.send(frame),
    receive: () => Promise.race([t.receive(), interrupted]),
    // the pooled data path passes through; a receiveInto left waiting by an interrupt may still
    // write its sink: Channel frees that memory only once the receive settles (channel.ts)
    ...(t.allocFrame ? { allocFrame: (size: number) => t.allocFrame!(size) } : {}),
    ...(t.receiveInto ? { receiveInto: (sink: FrameSink) => Promise.race([t.receiveInto!(sink), interrupted]) } : {}),
    close: () => t.close(),
    interrupt,
  };
}

function exitCodeFor(signal: NodeJS.Signals): number {
  return signal === "SIGINT" ? 130 : 143;
}

/** Checks --out before listening: a writable directory, not a directory itself, no symlink, absent unless --force. */
function checkOutput(out: string, force: boolean): void {
  const dir = dirname(resolve(out));
  let d;
  try {
    d = statSync(dir);
  } catch {
    throw new UsageError(`--out: directory ${dir} does not exist`);
  }
  if (!d.isDirectory()) throw new UsageError(`--out: ${dir} is not a directory`);
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch {
    throw new UsageError(`--out: directory ${dir} is not writable`);
  }
  FileMemory.removeOrphanNote(out);
  if (existsSync(inDoubtPath(out))) {
    throw new UsageError(
      `--out: a migration into ${out} is in doubt (${inDoubtPath(out)}); settle it with 'pagewire resolve --out ${out} --commit|--abort' first`,
    );
  }
  let st;
  try {
    st = lstatSync(out);
  } catch {
    return; // absent: the usual case
  }
  if (st.isDirectory()) throw new UsageError(`--out: ${out} is a directory`);
  if (st.isSymbolicLink()) throw new UsageError(`--out: ${out} is a symbolic link (give the path of the file itself)`);
  if (!st.isFile()) throw new UsageError(`--out: ${out} is not a regular file`);
  if (!force) throw new UsageError(`--out: ${out} exists (--force replaces it)`);
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UsageError(`${what}: cannot read ${file}: ${(err as Error).message}`);
  }
}

function note(line: string): void {
  console.error(`pagewire receive: ${line}`);
}

function oneLine(text: string): string {
  return text.split("\n")[0];
}
