// The source guest: a workload running in wall time, in a Web Worker on shared kernel
// memory (cross-origin isolated pages) or, as a fallback, on the main thread's timers.
//
//   main thread                         guest Worker (guest-worker.ts)
//   init{handle, workload} ─────────►   workload.init(ram)      writes + Atomics.or dirty bits
//                          ◄─────────   ready
//   start / throttle{pct}  ─────────►   every tick: workload.run(dt × (1 − throttle))
//   pause                  ─────────►   stops ticking
//                          ◄─────────   paused                  (then the engine's final harvest)
import type { GuestWriter } from "../../src/workload/workload.js";
import type { GuestWorkerHandle } from "../../src/memory/wasm-guest-memory.js";
import { createGuestWorkload, type GuestWorkloadOptions } from "./guest-workload.js";

export interface Guest {
  readonly where: "worker" | "main-thread";
  init(): Promise<void>;
  start(): void;
  pause(): Promise<void>;
  resume(): void;
  throttle(percent: number): void;
  stop(): void;
}

/** Runs a workload on timers in whatever thread it lives in (the Worker, or the page as fallback). */
export class GuestLoop {
  #timer: ReturnType<typeof setTimeout> | null = null;
  #last = 0;
  #throttle = 0;
  constructor(
    private run: (seconds: number) => void,
    private tickMs = 5,
  ) {}
  start(): void {
    if (this.#timer !== null) return;
    this.#last = performance.now();
    const tick = () => {
      const now = performance.now();
      // a tick never covers more than 100 ms of guest time (a busy main thread would otherwise burst)
      const dt = Math.min(0.1, (now - this.#last) / 1000);
      this.#last = now;
      this.run(dt * (1 - this.#throttle / 100));
      this.#timer = setTimeout(tick, this.tickMs);
    };
    this.#timer = setTimeout(tick, this.tickMs);
  }
  pause(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
  throttle(percent: number): void {
    this.#throttle = Math.max(0, Math.min(99, percent));
  }
}

/** A guest in a Web Worker writing straight into the shared kernel memory. */
export class WorkerGuest implements Guest {
  readonly where = "worker" as const;
  #worker: Worker;
  #waiters = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
  constructor(
    private handle: GuestWorkerHandle,
    private workload: string,
    private options: GuestWorkloadOptions,
  ) {
    this.#worker = new Worker(new URL("./guest-worker.ts", import.meta.url), {
      type: "module",
      name: "pagewire-guest",
    });
    this.#worker.onmessage = (e: MessageEvent<{ type: string; message?: string }>) => {
      if (e.data.type === "error") {
        // the page shows the failure (the init or pause waiting on the worker rejects)
        for (const w of this.#waiters.values()) w.reject(new Error(`guest worker: ${e.data.message}`));
        this.#waiters.clear();
        return;
      }
      this.#waiters.get(e.data.type)?.resolve();
      this.#waiters.delete(e.data.type);
    };
  }
  #reply(type: string): Promise<void> {
    return new Promise((resolve, reject) => this.#waiters.set(type, { resolve, reject }));
  }
  async init(): Promise<void> {
    const ready = this.#reply("ready");
    this.#worker.postMessage({ type: "init", handle: this.handle, workload: this.workload, options: this.options });
    await ready;
  }
  start(): void {
    this.#worker.postMessage({ type: "start" });
  }
  async pause(): Promise<void> {
    const paused = this.#reply("paused");
    this.#worker.postMessage({ type: "pause" });
    await paused;
  }
  resume(): void {
    this.start();
  }
  throttle(percent: number): void {
    this.#worker.postMessage({ type: "throttle", percent });
  }
  stop(): void {
    this.#worker.terminate();
  }
}

/** The fallback without cross-origin isolation: the same workload on the page's own timers. */
export class MainThreadGuest implements Guest {
  readonly where = "main-thread" as const;
  #loop: GuestLoop;
  #workload;
  constructor(
    private mem: GuestWriter,
    workload: string,
    options: GuestWorkloadOptions,
  ) {
    this.#workload = createGuestWorkload(workload, options);
    this.#loop = new GuestLoop((s) => this.#workload.run(s, this.mem));
  }
  async init(): Promise<void> {
    this.#workload.init(this.mem);
  }
  start(): void {
    this.#loop.start();
  }
  async pause(): Promise<void> {
    this.#loop.pause();
  }
  resume(): void {
    this.#loop.start();
  }
  throttle(percent: number): void {
    this.#loop.throttle(percent);
  }
  stop(): void {
    this.#loop.pause();
  }
}
