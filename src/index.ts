// pagewire: the public API. See README.md and ../shared/DESIGN.md.
export {
  loadKernel,
  createKernel,
  sharedMemoryAvailable,
  type LoadKernelOptions,
  type KernelBuild,
} from "./kernel/loader.js";
export { Kernel, PAGE_SIZE } from "./kernel/kernel.js";
import "./codec/kernel-codecs.js"; // adds k.xbzrleEncode, k.rleDecode, … to Kernel
export type { KernelRegion } from "./kernel/heap.js";
export type { KernelExports } from "./kernel/exports.js";
// kernel ABI constants in the public API (the whole set: src/kernel/abi.ts)
export {
  DEDUP_NONE,
  XBZRLE_OVERFLOW,
  CACHED_PAGE_LIFETIME,
  SAVE_MISS_INSERTED,
  SAVE_MISS_NOT_INSERTED,
  HISTORY_ROUNDS,
  MAX_DIRTY_COUNT,
} from "./kernel/abi.js";
export { DirtyBitmap, markPageDirty, type DirtyBitmapOptions, type PageRange } from "./kernel/dirty-bitmap.js";
export {
  PagewireError,
  KernelLoadError,
  KernelMemoryError,
  PagewireRangeError,
  ERROR_CODES,
  isPagewireErrorCode,
  type PagewireErrorCode,
} from "./errors.js";
export {
  hashBytes64,
  hashBytes128,
  hashPages,
  hashPageList,
  randomSeed,
  splitSeed,
  type Hash128,
  type HashPagesOptions,
} from "./kernel/pagehash.js";
export { DedupIndex, DedupError, type DedupIndexOptions, type DedupStats, type PageRef } from "./codec/dedup-index.js";
export { FakeDirtyFilter, type FakeDirtyFilterOptions, type FakeDirtyResult } from "./codec/fake-dirty.js";
export { HashDirtyLog, type HashDirtyLogOptions, type ScannedMemory } from "./memory/hash-dirty-log.js";
export {
  DirtyRateSampler,
  estimateFromSample,
  measureDirtyRate,
  samplePages,
  type DirtyRateEstimate,
  type DirtyRateOptions,
} from "./memory/dirty-rate.js";
export { XbzrleError, encodeXbzrle, decodeXbzrle, encodeXbzrlePages, decodeXbzrlePages } from "./codec/xbzrle.js";
export { RleError, encodeRle, decodeRle, encodeRlePages, decodeRlePages } from "./codec/rle.js";
export { LzError, encodeLz, decodeLz } from "./codec/lz.js";
export {
  XbzrleCache,
  DEFAULT_XBZRLE_CACHE_BYTES,
  type XbzrleCacheOptions,
  type XbzrleCacheStats,
} from "./codec/xbzrle-cache.js";
export { PageHistory, type PageHistoryOptions, type RecordRoundOptions } from "./policy/page-history.js";
export type {
  PolicyKind,
  SelectionContext,
  SelectionOutput,
  SelectionResult,
  PageSelectionPolicy,
  RoundStats,
  TerminationAction,
  TerminationDecision,
  TerminationPolicy,
  PeriodStats,
  NonConvergenceDecision,
  NonConvergencePolicy,
  Policy,
} from "./policy/types.js";
export { listPolicies, createPolicy, type PolicyInfo } from "./policy/registry.js";
export {
  simulatePolicyRounds,
  type SimulationOptions,
  type SimulationResult,
  type SimulatedRound,
} from "./sim/policy-rounds.js";
export { SelectionPolicyBase } from "./policy/selection/base.js";
export { VanillaSelection } from "./policy/selection/vanilla.js";
export { XenToSkipSelection } from "./policy/selection/xen-to-skip.js";
export { ReuseDistanceSelection } from "./policy/selection/reuse-distance.js";
export { DpdtSelection } from "./policy/selection/dpdt.js";
export { SecondChanceSelection, type SecondChanceOptions } from "./policy/selection/second-chance.js";
export { HistoryThresholdSelection, type HistoryThresholdOptions } from "./policy/selection/history-threshold.js";
export { BlockOrderedSelection, type BlockOrderedOptions } from "./policy/selection/block-ordered.js";
export { MicrowiperSelection, type MicrowiperOptions } from "./policy/selection/microwiper.js";
export { WeightedHotSelection, type WeightedHotOptions } from "./policy/selection/weighted-hot.js";
export { QemuTermination } from "./policy/termination/qemu.js";
export { XenTermination, type XenTerminationOptions } from "./policy/termination/xen.js";
export { XenLegacyTermination, type XenLegacyTerminationOptions } from "./policy/termination/xen-legacy.js";
export { MaxRoundsTermination, type MaxRoundsTerminationOptions } from "./policy/termination/max-rounds.js";
export { AdaptiveTermination, type AdaptiveTerminationOptions } from "./policy/termination/adaptive.js";
export { DirtyRateDetector } from "./policy/non-convergence/detector.js";
export { ThrottleNonConvergence, type ThrottleOptions } from "./policy/non-convergence/throttle.js";
export { PostcopyNonConvergence, type PostcopyOptions } from "./policy/non-convergence/postcopy.js";
export { ForceStopNonConvergence, type ForceStopOptions } from "./policy/non-convergence/force-stop.js";
// engine, memory, transports (browser-safe)
export {
  MigrationSource,
  MigrationAbortedError,
  type MigrationSourceOptions,
  type MigrationMode,
} from "./engine/source.js";
export {
  MigrationDestination,
  type MigrationDestinationOptions,
  type DestinationResult,
  type DestinationMemory,
} from "./engine/destination.js";
export { MigrationReport, ROUND_COLUMNS, type RoundRow, type PolicyDecision } from "./engine/report.js";
export {
  chooseMigrationPlan,
  measureWorkload,
  type MigrationPlan,
  type WorkloadMeasurement,
} from "./engine/auto-mode.js";
export { ProtocolError } from "./wire/messages.js";
export { ALL_FEATURES, offerFeatures, acceptFeatures, type Feature } from "./engine/features.js";
export {
  CODECS,
  SWITCHABLE_CODECS,
  CODEC_FEATURES,
  emptyCounts,
  addCounts,
  selectCodecs,
  selectAllCodecs,
  type CodecName,
  type SwitchableCodec,
  type CodecFlags,
  type CodecFeature,
  type EncodeCounts,
} from "./codec/codecs.js";
export { EncodePipeline, DEFAULT_CODECS, type CodecOptions } from "./codec/encode-pipeline.js";
export { PageApplier } from "./codec/page-applier.js";
export { PageRecordWriter, readPageRecords, RecordKind, RecordError } from "./wire/page-record.js";
export { WasmGuestMemory, type GuestWorkerHandle } from "./memory/wasm-guest-memory.js";
export type { GuestMemory, DirtyLog } from "./memory/guest-memory.js";
export type { Workload, GuestWriter } from "./workload/workload.js";
export { type Transport, TransportError, FrameQueue } from "./transport/transport.js";
export { createInProcessPair } from "./transport/in-process.js";
export { messagePortTransport, type MessagePortLike } from "./transport/message-port.js";
export { TokenBucket } from "./transport/rate-limit.js";
export { FrameError, FrameType, PROTOCOL_VERSION, type FrameKey } from "./wire/frame.js";
export { frameKey } from "./wire/hmac.js";
export { realClock, type Clock } from "./util/clock.js";
// workloads, traces and the virtual-time simulator
export { createWorkload, listWorkloads, type WorkloadInfo } from "./workload/registry.js";
export { SyntheticWorkload, type WorkloadOptions } from "./workload/synthetic.js";
export { CONTENT_MODELS, fillContent, type ContentModel } from "./workload/content.js";
export { seededRandom, ZipfSampler } from "./util/random.js";
export { VirtualClock } from "./sim/virtual-clock.js";
// auto mode that predicts: pass it as MigrationSourceOptions.auto.predictor
export { predictModes } from "./sim/mode-prediction.js";
export {
  DEFAULT_AUTO_WEIGHTS,
  type AutoModeOptions,
  type AutoModeWeights,
  type ModePrediction,
} from "./engine/auto-predict.js";
export { LinkEnd, createLink, type LinkOptions } from "./sim/link.js";
export { PRESETS, findPreset, type Preset } from "./sim/presets.js";
export {
  runScenario,
  type ScenarioOptions,
  type ScenarioResult,
  type ScenarioProgress,
  type CpuTimeMode,
} from "./sim/simulator.js";
