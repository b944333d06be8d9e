// The main thread's side of a migration's data channels: one Worker per channel
// (channel-worker.ts), each given its own arena of the main kernel's shared memory. What a
// worker reports is waited for by kind; a worker's error (or its death) fails every wait:
// a channel failing is a connection failure.
import { PagewireError, type PagewireErrorCode } from "../errors.js";
import type { Kernel } from "../kernel/kernel.js";
import type { KernelArena } from "../kernel/kernel.js";
import { TransportError } from "../transport/transport.js";
import { withTimeout } from "../util/clock.js";
import { startWorker, type WorkerHandle } from "../util/worker.js";
import type { WasmGuestMemory } from "../memory/wasm-guest-memory.js";
import type { FromChannel, ToChannel } from "./channel-protocol.js";
import type { Session } from "./handshake.js";
import { MigrationTimeoutError, type MigrationTimeouts } from "./ownership.js";

type Op = FromChannel["op"];
type Reply<O extends Op> = Extract<FromChannel, { op: O }>;

/** What every channel's init message carries besides its role's fields. */
export function commonInit(
  o: { memory: WasmGuestMemory; session: Session; key: Uint8Array | null; timeouts: MigrationTimeouts | null },
  index: number,
  count: number,
  arena: KernelArena,
) {
  const { memory, session, key, timeouts } = o;
  return {
    op: "init",
    index,
    count,
    arena,
    ram: memory.region.ptr,
    pageCount: memory.pageCount,
    session,
    key,
    timeouts,
  } as const;
}

/** The worker script: next to this module in the build; from the sources (tests), the build's copy. */
function channelWorkerUrl(): URL {
  const here = import.meta.url;
  return here.endsWith(".ts")
    ? new URL("../../dist/engine/channel-worker.js", here)
    : new URL("./channel-worker.js", here);
}

interface Slot {
  worker: WorkerHandle;
  arena: KernelArena | null;
  mail: FromChannel[];
  wake: (() => void) | null;
}

export class ChannelWorkers {
  readonly kernel: Kernel;
  readonly #slots: Slot[];
  #error: PagewireError | null = null;
  #closed = false;
  /** Live reports of a channel during a round (not queued: only the latest matters). */
  onProgress: ((index: number, report: { round: number; pages: number; bytes: number }) => void) | null = null;
  readonly #failed: Promise<never>;
  #fail!: (e: PagewireError) => void;

  private constructor(kernel: Kernel, workers: WorkerHandle[]) {
    this.kernel = kernel;
    const slots: Slot[] = workers.map((worker) => ({ worker, arena: null, mail: [], wake: null }));
    this.#slots = slots;
    this.#failed = new Promise<never>((_, reject) => (this.#fail = reject));
    this.#failed.catch(() => {});
    slots.forEach((s, i) => {
      s.worker.onMessage((m) => {
        const msg = m as FromChannel;
        if (msg.op === "error") this.#failWith(channelError(i, msg));
        else if (msg.op === "progress") this.onProgress?.(i, msg);
        else s.mail.push(msg);
        s.wake?.();
      });
      s.worker.onFailure((err) => {
        this.#failWith(new TransportError("CHANNEL_LOST", `data channel ${i}: worker failed: ${err.message}`));
        s.wake?.();
      });
    });
  }

  /**
   * Starts `count` workers (they load their code meanwhile: start them before the handshake);
   * `init` later gives the first ones their arenas and work and stops the rest.
   */
  static async spawn(kernel: Kernel, count: number): Promise<ChannelWorkers> {
    const started = await Promise.allSettled(Array.from({ length: count }, () => startWorker(channelWorkerUrl())));
    const workers = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
    const failed = started.find((s) => s.status === "rejected");
    if (failed) {
      await Promise.all(workers.map((w) => w.terminate()));
      const cause = (failed as PromiseRejectedResult).reason;
      throw new TransportError("CHANNEL_LOST", `cannot start channel workers: ${(cause as Error).message}`, { cause });
    }
    return new ChannelWorkers(kernel, workers);
  }

  /** Gives the first `count` workers an arena of `arenaBytes` each and their init message; stops the others. */
  async init(
    count: number,
    arenaBytes: number,
    init: (index: number, arena: KernelArena) => { message: ToChannel; transfer?: unknown[] },
  ): Promise<void> {
    const extra = this.#slots.splice(count);
    await Promise.all(extra.map((s) => s.worker.terminate()));
    for (const s of this.#slots) s.arena = this.kernel.arena(arenaBytes);
    this.#slots.forEach((s, i) => {
      const { message, transfer } = init(i, s.arena!);
      s.worker.post(message, transfer);
    });
  }

  get count(): number {
    return this.#slots.length;
  }

  /** Rejects once any channel fails. */
  get failed(): Promise<never> {
    return this.#failed;
  }

  /** Throws the first channel failure, if any. */
  throwIfFailed(): void {
    if (this.#error) throw this.#error;
  }

  post(index: number, message: ToChannel, transfer?: unknown[]): void {
    this.#slots[index].worker.post(message, transfer);
  }

  /** The next report of kind `op` from channel `index` (reports of other kinds stay queued). */
  async next<O extends Op>(index: number, op: O): Promise<Reply<O>> {
    const s = this.#slots[index];
    for (;;) {
      this.throwIfFailed();
      const at = s.mail.findIndex((m) => m.op === op);
      if (at >= 0) return s.mail.splice(at, 1)[0] as Reply<O>;
      await new Promise<void>((r) => (s.wake = r));
      s.wake = null;
    }
  }

  /** The next report of kind `op` from every channel, in channel order. */
  all<O extends Op>(op: O): Promise<Reply<O>[]> {
    return Promise.all(this.#slots.map((_, i) => this.next(i, op)));
  }

  /**
   * Ends every channel: asks each to close (its connection ends after what it sent), waits
   * up to `graceSeconds` for their last word, then stops the workers and frees their arenas.
   * Returns the channels' closing reports that came.
   */
  async close(graceSeconds = 5): Promise<Reply<"closed">[]> {
    if (this.#closed) return [];
    this.#closed = true;
    const reports: Reply<"closed">[] = [];
    if (!this.#error && this.#slots.every((s) => s.arena)) {
      for (let i = 0; i < this.#slots.length; i++) this.post(i, { op: "close" });
      const grace = new Promise<null>((r) => setTimeout(() => r(null), graceSeconds * 1000).unref?.());
      for (let i = 0; i < this.#slots.length; i++) {
        const m = await Promise.race([this.next(i, "closed").catch(() => null), grace]);
        if (m) reports.push(m);
      }
    }
    this.#failWith(new TransportError("CONNECTION_CLOSED", "data channels closed"));
    await Promise.all(this.#slots.map((s) => s.worker.terminate()));
    for (const s of this.#slots) if (s.arena) this.kernel.freeArena(s.arena);
    return reports;
  }

  /** Stops workers that were spawned and never given channels (null: none). */
  static async release(spawned: Promise<ChannelWorkers> | null): Promise<void> {
    await (await spawned?.catch(() => null))?.close(0);
  }

  #failWith(e: PagewireError): void {
    if (this.#error) return;
    this.#error = e;
    this.#fail(e);
    for (const s of this.#slots) s.wake?.();
  }
}

/** A worker's error as the main thread raises it: a link failure stays one. */
function channelError(index: number, m: Extract<FromChannel, { op: "error" }>): PagewireError {
  const code = m.code as PagewireErrorCode;
  const message = `data channel ${index}: ${m.message}`;
  return m.link ? new TransportError(code, message) : new PagewireError(code, message);
}

const TIMED_OUT = Symbol("timed out");

/** `p`, or a MigrationTimeoutError (`code`) after `seconds` (none when undefined). */
export async function within<T>(
  p: Promise<T>,
  seconds: number | undefined,
  code: "TIMEOUT_HANDSHAKE" | "TIMEOUT_RECEIVING",
  what: string,
): Promise<T> {
  if (seconds === undefined) return p;
  p.catch(() => {}); // a failure after the deadline is no longer anyone's
  const v = await withTimeout(p, seconds, TIMED_OUT);
  if (v === TIMED_OUT) throw new MigrationTimeoutError(code, `${what} within ${seconds} s`);
  return v;
}
