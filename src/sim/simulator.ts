// A migration in virtual time: the real engine and kernels on real bytes, a simulated
// guest and a simulated link.
//
//   VirtualClock ── onAdvance(dt) ──► workload.run(dt × (1 − throttle), source memory)
//        │                             (stops at onPause: the guest is paused)
//        ├── TokenBucket (engine max-bandwidth) sleeps on it
//        └── LinkEnd × 2 (bandwidth, latency, jitter) deliver frames on it
//   MigrationSource ──► LinkEnd ──► in-process pair ──► MigrationDestination
//   after the switch-over the guest runs on the destination (destination-guest.ts): at
//   POSTCOPY_START in post-copy and hybrid (a missing page stalls it until it arrives),
//   at the activation in pre-copy; guest-progress.ts says what the migration cost it.
//
// Kernel CPU time: "model" charges cpuNsPerPage for each page the source reads and
// encodes (repeatable); "measure" charges the wall time the process spent between two
// frames (source and destination work, single-threaded: not repeatable); "none" makes
// CPU free. The charge delays the next frame, as a busy sender would.
//
// Repeatability: workload, jitter and the engine's hash seed come from the scenario
// seed and nothing reads wall time (except "measure"), so two runs with one seed give
// identical reports.
import { MigrationDestination } from "../engine/destination.js";
import { MigrationSource, type MigrationMode } from "../engine/source.js";
import type { MigrationReport } from "../engine/report.js";
import type { CodecOptions } from "../codec/encode-pipeline.js";
import type { AutoModeOptions } from "../engine/auto-predict.js";
import { PagewireRangeError } from "../errors.js";
import { PAGE_SIZE, type Kernel } from "../kernel/kernel.js";
import { createKernel } from "../kernel/loader.js";
import type { GuestMemory } from "../memory/guest-memory.js";
import { WasmGuestMemory } from "../memory/wasm-guest-memory.js";
import { createInProcessPair } from "../transport/in-process.js";
import { mixSeed } from "../util/random.js";
import type { Workload } from "../workload/workload.js";
import { DestinationGuest, type GuestAccess } from "./destination-guest.js";
import { guestProgress, type GuestProgress } from "./guest-progress.js";
import { createLink } from "./link.js";
import { VirtualClock } from "./virtual-clock.js";
import { defaultWarmupSeconds, warmUp, type WarmUp } from "./warm-up.js";

export type CpuTimeMode = "model" | "measure" | "none";

export interface ScenarioOptions {
  /** The guest: a workload instance (synthetic or TraceWorkload). */
  workload: Workload;
  /** Guest RAM in pages. */
  pageCount: number;
  seed?: number;
  /** Link bandwidth, bytes/s each way. */
  bandwidth: number;
  /** One-way latency, seconds (default 0.0005). */
  latency?: number;
  jitter?: number;
  /** Engine rate limit (QEMU max-bandwidth), bytes/s; default the link bandwidth (the engine knows its rate, as QEMU does). */
  maxBandwidth?: number;
  mode?: MigrationMode;
  codecs?: CodecOptions;
  policy?: { selection?: string; termination?: string; nonConvergence?: string; options?: Record<string, object> };
  downtimeLimitMs?: number;
  maxRounds?: number;
  /**
   * Guest seconds run before the migration starts (sim/warm-up.ts). The pages not all zero
   * at the start count as modified once (the boot), then the warm-up is run one minimum
   * round period at a time and each period's dirty set goes into a page history the
   * source starts from. Default: 255 sync periods for a selection policy that counts
   * modifications since the VM started (history-threshold), else 0 (no history).
   */
  warmupSeconds?: number;
  /** The engine's shortest round when pages were deferred, ms (default 1000). */
  minRoundMs?: number;
  cpu?: CpuTimeMode;
  /** Modeled CPU cost per page read and encoded, ns (default 400). */
  cpuNsPerPage?: number;
  /** Called as virtual time advances. */
  onProgress?: (p: ScenarioProgress) => void;
  /** Kernels for source and destination (default: two new ones). */
  kernels?: [Kernel, Kernel];
  /** Run the guest on the destination after the switch-over (default true). */
  destinationGuest?: boolean;
  /** The destination guest's step, seconds of guest time (default 0.001). */
  guestQuantumSeconds?: number;
  /** The link's socket send buffer, bytes (default 1 MiB): post-copy requests queue behind it. */
  sendBufferBytes?: number;
  /** Payload bytes per PAGES frame (the engine's frameBytes, default 1 MiB). */
  frameBytes?: number;
  /** Pages pushed per background chunk in post-copy (the engine's prepagePages, default 16). */
  prepagePages?: number;
  /** Auto mode: probe length (ms) and prediction options (engine/auto-predict.ts). */
  autoProbeMs?: number;
  auto?: AutoModeOptions;
}

export interface ScenarioProgress {
  /** Virtual seconds since the migration started. */
  time: number;
  /** Pre-copy rounds finished. */
  rounds: number;
  /** Pages the source read in the current round. */
  roundPages: number;
  bytesSent: number;
  pageCount: number;
  paused: boolean;
}

export interface ScenarioResult {
  report: MigrationReport;
  /** (virtual seconds since start, cumulative bytes delivered to the destination). */
  timeline: Array<[number, number]>;
  /** The destination's memory equals the source's at the pause, byte for byte (pages the destination guest wrote: at their first touch). */
  verified: boolean;
  /** Guest writes during the run (as the workload counts them, when it does). */
  cpuMode: CpuTimeMode;
  /** Seconds of CPU charged (modeled or measured). */
  cpuSeconds: number;
  /** Wall-clock seconds the simulation took (not part of the repeatable result). */
  wallSeconds: number;
  /** What the migration cost the guest (guest-progress.ts). */
  guest: GuestProgress;
  /** The history the source started from (warm-up.ts), when a warm-up ran. */
  warmup?: { seconds: number; syncs: number; bootPages: number };
}

/** Runs one migration scenario in virtual time. */
export async function runScenario(o: ScenarioOptions): Promise<ScenarioResult> {
  if (!(o.bandwidth > 0))
    throw new PagewireRangeError("SIM_BANDWIDTH", `bandwidth must be > 0 bytes/s, got ${o.bandwidth}`);
  if (!(Number.isInteger(o.pageCount) && o.pageCount > 0))
    throw new PagewireRangeError("SIM_GUEST_SIZE", `guest size must be a positive number of pages, got ${o.pageCount}`);
  const wall0 = performance.now();
  const seed = o.seed ?? 1;
  const cpu = o.cpu ?? "model";
  const nsPerPage = o.cpuNsPerPage ?? 400;
  const [ks, kd] = o.kernels ?? [
    await createKernel({ initialBytes: o.pageCount * PAGE_SIZE + (96 << 20) }),
    await createKernel({ initialBytes: o.pageCount * PAGE_SIZE + (32 << 20) }),
  ];
  const src = new WasmGuestMemory(ks, o.pageCount);
  const dst = new WasmGuestMemory(kd, o.pageCount);
  const clock = new VirtualClock();
  let warm: WarmUp | undefined;
  try {
    // the source guest: writes, and rewrites of identical bytes (seen by the dirty log only)
    const srcGuest: GuestAccess = {
      pageCount: src.pageCount,
      write: (offset, data) => src.write(offset, data),
      rewrite: (page) => src.write(page * PAGE_SIZE, src.pageView(page).slice()),
    };
    o.workload.init(srcGuest);
    let paused = false;
    let pausedAt = NaN;
    let throttle = 0;
    let sourceWork = 0;
    const warmupSeconds = o.warmupSeconds ?? defaultWarmupSeconds(o.policy?.selection, o.minRoundMs);
    if (!(warmupSeconds >= 0 && Number.isFinite(warmupSeconds)))
      throw new PagewireRangeError(
        "SIM_WARMUP",
        `warm-up must be a finite number of seconds ≥ 0, got ${warmupSeconds}`,
      );
    warm = warmupSeconds > 0 ? warmUp(ks, src, srcGuest, o.workload, warmupSeconds, o.minRoundMs) : undefined;
    const [ta, tb] = createLink(createInProcessPair(), clock, {
      bandwidth: o.bandwidth,
      latency: o.latency ?? 0.0005,
      jitter: o.jitter ?? 0,
      seed: mixSeed(seed, 0x11c),
      measureCpu: cpu === "measure",
      sendBufferBytes: o.sendBufferBytes,
    });
    let roundPages = 0;
    let cpuSeconds = 0;
    let source: MigrationSource | null = null;
    let lastRounds = 0;
    // the source reads guest pages through this: counts pages, charges modeled CPU time
    const memory: GuestMemory = {
      pageCount: src.pageCount,
      readPages(pages, out) {
        src.readPages(pages, out);
        const rounds = source?.report.rounds.length ?? 0;
        if (rounds !== lastRounds) {
          lastRounds = rounds;
          roundPages = 0;
        }
        roundPages += pages.length;
        if (cpu === "model") {
          const s = (pages.length * nsPerPage) / 1e9;
          ta.cpuDebt += s;
          cpuSeconds += s;
        }
      },
      writePage: (p, d) => src.writePage(p, d),
      pageView: (p) => src.pageView(p),
      flush: () => src.flush(),
    };
    clock.onAdvance = (from, to) => {
      if (!paused && throttle < 1) {
        o.workload.run((to - from) * (1 - throttle), srcGuest);
        sourceWork += (to - from) * (1 - throttle);
      }
      o.onProgress?.({
        time: to,
        rounds: source?.report.rounds.length ?? 0,
        roundPages,
        bytesSent: ta.bytesSent,
        pageCount: o.pageCount,
        paused,
      });
    };
    const log = src.dirtyLog();
    source = new MigrationSource({
      kernel: ks,
      memory,
      dirtyLog: log,
      transport: ta,
      clock,
      mode: o.mode ?? "precopy",
      codecs: { ...o.codecs, hashSeed: BigInt(mixSeed(seed, 0x4a54)) },
      maxBandwidth: o.maxBandwidth ?? o.bandwidth,
      downtimeLimitMs: o.downtimeLimitMs,
      maxRounds: o.maxRounds,
      minRoundMs: o.minRoundMs,
      history: warm?.history,
      policy: o.policy,
      prepagePages: o.prepagePages,
      frameBytes: o.frameBytes,
      autoProbeMs: o.autoProbeMs,
      // auto mode predicts with the simulator itself unless told otherwise (loaded only then)
      auto:
        o.mode === "auto" && !o.auto?.predictor
          ? { ...o.auto, predictor: (await import("./mode-prediction.js")).predictModes }
          : o.auto,
      onPause: () => {
        paused = true;
        pausedAt = clock.now();
      },
      onThrottle: (percent) => {
        throttle = percent / 100;
      },
      timeouts: false, // a virtual clock jumps to the next timer: a timeout would fire whenever nothing else is scheduled
    });
    let destination: MigrationDestination | null = null;
    const guest = new DestinationGuest({
      workload: o.workload,
      memory: dst,
      reference: src, // paused from onPause on: the state at the pause
      clock,
      anyMissing: () => destination!.missingPages > 0,
      fetch: (page) => destination!.ensurePage(page),
      quantumSeconds: o.guestQuantumSeconds,
    });
    destination = new MigrationDestination({
      kernel: kd,
      memory: dst,
      transport: tb,
      clock,
      timeouts: false,
      onActivate: () => {
        if (o.destinationGuest !== false) guest.start();
      },
    });
    const [report] = await Promise.all([source.migrate(), destination.receive()]);
    const end = clock.now();
    const destinationWork = guest.stats.workSeconds;
    await guest.stop();
    // the source stays paused after onPause, so its memory is the state at the pause
    const verified = Number.isFinite(guest.stats.startedAt)
      ? guest.stats.mismatched === 0 && guest.untouchedPagesMatch()
      : equalBytes(src.bytes(), dst.bytes());
    return {
      report,
      timeline: thin(ta.timeline, 400),
      verified,
      cpuMode: cpu,
      cpuSeconds: cpu === "measure" ? ta.measuredCpuSeconds : cpuSeconds,
      wallSeconds: (performance.now() - wall0) / 1000,
      guest: guestProgress(end, sourceWork, pausedAt, guest.stats, destinationWork),
      warmup: warm && { seconds: warm.seconds, syncs: warm.syncs, bootPages: warm.bootPages },
    };
  } finally {
    clock.onAdvance = null;
    warm?.history.dispose();
    src.dispose();
    dst.dispose();
  }
}

/** Byte-for-byte equality (Buffer.compare on Node, 8 bytes at a time elsewhere). */
function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  const B = (globalThis as { Buffer?: { compare(x: Uint8Array, y: Uint8Array): number } }).Buffer;
  if (B) return B.compare(a, b) === 0;
  const n = a.length >>> 3;
  const wa = new BigUint64Array(a.buffer, a.byteOffset, n);
  const wb = new BigUint64Array(b.buffer, b.byteOffset, n);
  for (let i = 0; i < n; i++) if (wa[i] !== wb[i]) return false;
  for (let i = n * 8; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** At most `n` points of a monotone timeline, keeping the first and last. */
function thin(points: Array<[number, number]>, n: number): Array<[number, number]> {
  if (points.length <= n) return points.slice();
  const out: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) out.push(points[Math.round((i * (points.length - 1)) / (n - 1))]);
  return out;
}
