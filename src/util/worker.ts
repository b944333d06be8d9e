// A Worker on either platform behind one small interface: node:worker_threads in Node, a
// module Worker in a browser. Messages are structured clones; `transfer` moves ports and buffers.

export interface WorkerHandle {
  post(message: unknown, transfer?: readonly unknown[]): void;
  onMessage(listener: (message: unknown) => void): void;
  /** An uncaught error in the worker, or its exit before it was terminated. */
  onFailure(listener: (error: Error) => void): void;
  /** Whether the worker keeps a Node process alive (the default); browsers ignore it. */
  keepAlive(on: boolean): void;
  terminate(): Promise<void>;
}

const isNode = typeof process !== "undefined" && !!process.versions?.node;

/** Starts the worker script at `url` (an ES module). */
export async function startWorker(url: URL): Promise<WorkerHandle> {
  if (isNode) {
    const name = "node:worker_threads";
    const { Worker } = (await import(/* @vite-ignore */ name)) as typeof import("node:worker_threads");
    const w = new Worker(url);
    let terminating = false;
    return {
      post: (m, t) => w.postMessage(m, t as never),
      onMessage: (f) => void w.on("message", f),
      onFailure(f) {
        w.on("error", f);
        w.on("exit", (code) => {
          if (!terminating) f(new Error(`worker exited with code ${code}`));
        });
      },
      keepAlive: (on) => void (on ? w.ref() : w.unref()),
      async terminate() {
        terminating = true;
        await w.terminate();
      },
    };
  }
  const w = new Worker(url, { type: "module" });
  return {
    post: (m, t) => w.postMessage(m, (t ?? []) as Transferable[]),
    onMessage: (f) => w.addEventListener("message", (e) => f(e.data)),
    onFailure: (f) => w.addEventListener("error", (e) => f(new Error(e.message))),
    keepAlive: () => {},
    async terminate() {
      w.terminate();
    },
  };
}

/** The worker's side: the parent it talks to. */
export interface ParentPort {
  post(message: unknown, transfer?: readonly unknown[]): void;
  onMessage(listener: (message: unknown) => void): void;
}

export async function parentPort(): Promise<ParentPort> {
  if (isNode) {
    const name = "node:worker_threads";
    const { parentPort: p } = (await import(/* @vite-ignore */ name)) as typeof import("node:worker_threads");
    if (!p) throw new Error("parentPort(): not running in a worker");
    return { post: (m, t) => p.postMessage(m, t as never), onMessage: (f) => void p.on("message", f) };
  }
  const self = globalThis as unknown as {
    postMessage(m: unknown, t?: Transferable[]): void;
    addEventListener(type: "message", f: (e: { data: unknown }) => void): void;
  };
  return {
    post: (m, t) => self.postMessage(m, (t ?? []) as Transferable[]),
    onMessage: (f) => self.addEventListener("message", (e) => f(e.data)),
  };
}
