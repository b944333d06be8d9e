// The built CLI as a child process: `runCli(args)` for any command, `startReceiver(args)`
// for `pagewire receive --listen 127.0.0.1:0 …`, which resolves once the receiver prints
// the port it listens on. Either process is killed when the test finishes, if still alive.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { onTestFinished } from "vitest";

export const CLI = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));

export interface CliExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliProcess {
  child: ChildProcess;
  /** Output so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves when the process exits (never rejects). */
  exited: Promise<CliExit>;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * Spawns `node dist/cli/main.js …args`, collecting its output. `exited` waits for the exit
 * and for the output pipes to close, so the output is complete; with `waitForStderr: false`
 * it does not wait for stderr, for a command whose detached children inherit it
 * (migrate-qemu's destination QEMU).
 */
export function runCli(args: string[], options: { waitForStderr?: boolean } = {}): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d));
  child.stderr!.on("data", (d: Buffer) => (stderr += d));
  const closed = (s: NodeJS.ReadableStream) => new Promise<void>((resolve) => s.once("close", () => resolve()));
  const pipes = Promise.all([closed(child.stdout!), options.waitForStderr === false ? null : closed(child.stderr!)]);
  const exit = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.once("exit", (code, signal) => resolve([code, signal])),
  );
  const exited = Promise.all([exit, pipes]).then(([[code, signal]]) => ({ code, signal, stdout, stderr }));
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  return {
    child,
    exited,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    kill: (signal = "SIGTERM") => void child.kill(signal),
  };
}

export interface Receiver extends CliProcess {
  port: number;
}

/** Starts `pagewire receive --listen 127.0.0.1:0 …args`; resolves with its port once it listens, rejects if it exits first. */
export async function startReceiver(args: string[]): Promise<Receiver> {
  const rx = runCli(["receive", "--listen", "127.0.0.1:0", ...args]);
  const port = await new Promise<number>((resolve, reject) => {
    const onData = () => {
      const m = /listening on [^:]+:(\d+)/.exec(rx.stderr);
      if (!m) return;
      rx.child.stderr!.off("data", onData);
      resolve(Number(m[1]));
    };
    rx.child.stderr!.on("data", onData); // registered after runCli's collector: rx.stderr already holds the chunk
    void rx.exited.then((e) =>
      reject(new Error(`receiver exited before listening (${e.code ?? e.signal}): ${e.stderr}`)),
    );
  });
  return Object.assign(rx, { port });
}
