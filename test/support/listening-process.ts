// A Node script in a child process that prints "listening on host:port" on stderr and one
// JSON line on stdout before it exits (test/support/engine-receiver.mjs and the benchmark's
// peers): resolves with the port once it listens; `result` is the JSON line (it rejects
// with the script's stderr when it exits with another code than 0).
import { spawn, type ChildProcess } from "node:child_process";

export interface ListeningProcess<T> {
  port: number;
  result: Promise<T>;
  child: ChildProcess;
}

export function startListeningProcess<T>(script: string, args: string[] = []): Promise<ListeningProcess<T>> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => (out += d));
  const result = new Promise<T>((resolve, reject) =>
    child.on("exit", (code) =>
      code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`${script} exited ${code}: ${err}`)),
    ),
  );
  result.catch(() => {}); // a caller that never waits for it still sees the failure where it waits for the port
  return new Promise((resolve, reject) => {
    child.stderr!.on("data", (d) => {
      err += d;
      const m = /listening on [^:]+:(\d+)/.exec(err);
      if (m) resolve({ port: Number(m[1]), result, child });
    });
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`${script} exited ${code} before listening: ${err}`)));
  });
}
