// The source QEMU's downtime-limit, scaled to the link the proxy really uses (qemu-proxy send
// --qmp). QEMU stops its guest once its dirty RAM would cross in downtime-limit at the
// bandwidth it measures; through the proxy it measures the proxy's intake of its raw stream,
// which pagewire carries in fewer bytes (zero, unchanged, dedup, XBZRLE, RLE): about 1.7× the
// link on the benchmark's guest, so QEMU stopped with that much more dirty RAM than a direct
// migration over the same link — every page of it crosses both proxies while the guest is
// stopped. The tuner sets downtime-limit := the user's downtime-limit × (pagewire's bytes on
// the link ÷ QEMU's bytes into the proxy) over the last second, never above the user's value:
// QEMU's threshold (its bandwidth × downtime-limit) is then the link's rate × the user's
// downtime-limit, what a direct migration over that link would stop with. QEMU's own rule
// still decides when to stop; the user's value is restored at the end, whatever the outcome.
import type { QmpClient } from "./qmp.js";

/** The downtime-limit (ms) that makes QEMU's threshold the link's rate × `base`: never above `base`, at least 1 (0 would never converge). */
export function scaledDowntimeLimit(base: number, qemuBytes: number, linkBytes: number): number {
  if (!(qemuBytes > 0) || !(linkBytes >= 0)) return base;
  return Math.max(1, Math.min(base, Math.round((base * linkBytes) / qemuBytes)));
}

export interface DowntimeLimitTunerOptions {
  /** Bytes so far: QEMU's stream into the proxy, and pagewire's frames on the link (null before the link is up). */
  sample: () => { qemuBytes: number; linkBytes: number } | null;
  /** How often to look, ms (default 100: QEMU re-measures its bandwidth every 100 ms). */
  intervalMs?: number;
  /** The window the ratio is taken over, ms (default 1000). */
  windowMs?: number;
  /** QEMU bytes a window needs before its ratio counts (default 1 MiB). */
  minQemuBytes?: number;
  log?: (line: string) => void;
}

export class DowntimeLimitTuner {
  readonly #qmp: QmpClient;
  readonly #o: DowntimeLimitTunerOptions;
  #base = 0;
  #current = 0;
  #timer: ReturnType<typeof setInterval> | null = null;
  #samples: { t: number; qemuBytes: number; linkBytes: number }[] = [];
  #busy = false;
  /** Every downtime-limit set, in order (the user's value last once restored). */
  readonly history: number[] = [];

  private constructor(qmp: QmpClient, o: DowntimeLimitTunerOptions) {
    this.#qmp = qmp;
    this.#o = o;
  }

  /** Reads the user's downtime-limit from QEMU and starts watching; `stop()` restores it. */
  static async start(qmp: QmpClient, o: DowntimeLimitTunerOptions): Promise<DowntimeLimitTuner> {
    const t = new DowntimeLimitTuner(qmp, o);
    const p = await qmp.execute<{ "downtime-limit"?: number }>("query-migrate-parameters");
    t.#base = t.#current = p["downtime-limit"] ?? 300;
    o.log?.(`QEMU's downtime-limit is ${t.#base} ms; scaled to the link while QEMU iterates`);
    t.#timer = setInterval(() => void t.#tick(), o.intervalMs ?? 100);
    t.#timer.unref?.();
    return t;
  }

  /** The user's downtime-limit, as QEMU had it when the proxy started. */
  get base(): number {
    return this.#base;
  }

  /** The downtime-limit QEMU has now (as the tuner last set it). */
  get current(): number {
    return this.#current;
  }

  /** QEMU stopped its guest: its decision is made, the limit stays as it is until stop(). */
  freeze(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Stops tuning and gives QEMU back the user's downtime-limit (best effort: QEMU may be gone). */
  async stop(): Promise<void> {
    this.freeze();
    while (this.#busy) await new Promise((r) => setTimeout(r, 5));
    if (this.#current === this.#base) return;
    await this.#set(this.#base).catch(() => {});
  }

  async #tick(): Promise<void> {
    if (this.#busy) return;
    const s = this.#o.sample();
    if (!s) return;
    const now = performance.now();
    const samples = this.#samples;
    samples.push({ t: now, ...s });
    while (samples.length > 1 && now - samples[1].t >= (this.#o.windowMs ?? 1000)) samples.shift();
    const first = samples[0];
    const dq = s.qemuBytes - first.qemuBytes;
    if (dq < (this.#o.minQemuBytes ?? 2 ** 20)) return;
    const next = scaledDowntimeLimit(this.#base, dq, s.linkBytes - first.linkBytes);
    // QMP round trips are cheap, but QEMU's log need not see every wobble
    if (Math.abs(next - this.#current) < Math.max(1, this.#current * 0.05)) return;
    this.#busy = true;
    try {
      await this.#set(next);
    } catch (err) {
      this.freeze(); // advisory only: QEMU keeps what it has, the migration goes on
      this.#o.log?.(`could not set QEMU's downtime-limit (${(err as Error).message}); tuning stopped`);
    } finally {
      this.#busy = false;
    }
  }

  async #set(ms: number): Promise<void> {
    await this.#qmp.setMigrationParameters({ "downtime-limit": ms });
    this.#current = ms;
    this.history.push(ms);
  }
}
