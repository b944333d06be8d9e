/**
 * Every stable error code pagewire uses, with what it means. A `PagewireError` carries one
 * of them as `code` (for programs) and a message with the numbers (for people); programs
 * tell errors apart by class (`instanceof FrameError`) and by code, never by a code's
 * prefix. test/house/error-codes.test.ts checks that src uses exactly these codes.
 */
export const ERROR_CODES = {
  // kernel loading and memory (KernelLoadError, KernelMemoryError)
  WASM_LOAD: "the .wasm module could not be read or compiled",
  KERNEL_BUILD: "PAGEWIRE_KERNEL names no kernel build",
  KERNEL_ABORT: "a kernel assertion failed (debug build)",
  SHARED_UNAVAILABLE: "shared memory asked of a platform or kernel without it",
  ALLOC_SIZE: "an allocation size that is not a non-negative integer",
  ALLOC_ALIGN: "an allocation alignment that is not a power of two ≤ 65536",
  OUT_OF_MEMORY: "kernel memory cannot grow to fit an allocation (4 GiB at most)",
  REGION_NOT_LIVE: "a region freed twice or not from this kernel",
  ARENA_FULL: "an allocation that does not fit in the arena of an attached kernel (it never grows memory)",
  ARENA_INVALID: "an arena descriptor that is not a region of a kernel memory past its static data",
  // arguments (PagewireRangeError)
  BUFFER_TOO_SHORT: "an output or input buffer smaller than the operation needs",
  PAGE_COUNT: "a page count that is negative, not an integer or too large",
  PAGE_INDEX: "a page index past the end of memory",
  BITMAP_MISMATCH: "bitmaps or histories of different kernels or page counts combined",
  GUEST_ADDRESS: "a guest write outside guest memory",
  HASH_BITS: "a hash width other than 64 or 128 bits",
  HASH_SEED: "a hash seed that is not a 64-bit unsigned bigint",
  XBZRLE_LENGTH: "a batch XBZRLE length that is not -1, 0 or positive",
  XBZRLE_CACHE_SIZE: "an XBZRLE cache smaller than one page",
  RLE_LENGTH: "a batch RLE length that is not -1 or positive",
  LZ_MAX_BYTES: "an LZ byte budget outside 1..4096",
  DEDUP_SIZE: "a dedup table smaller than one bucket",
  GUEST_ID: "a dedup guest id outside the u32 range",
  ROUND: "a round number that is not a non-negative integer",
  ROUNDS_AGO: "a history round past the rounds kept",
  MIN_ROUND: "a minimum round period that is negative or not finite",
  WEIGHTS: "more history weights than rounds kept",
  NO_REUSE_TRACKER: "reuse distances asked of a history created without the tracker",
  CONFIDENCE: "a dirty-rate confidence level without a table entry",
  SAMPLE_SIZE: "a dirty-rate sample size that is not positive",
  INTERVAL: "a dirty-rate interval that is not positive",
  NOT_STARTED: "a dirty-rate measurement finished, or a dirty log used, before it started",
  UNKNOWN_POLICY: "a policy name the registry does not know",
  UNKNOWN_WORKLOAD: "a workload name the registry does not know",
  WORKLOAD_OPTION: "a workload option out of range",
  WORKLOAD_TIME: "a negative workload run time",
  SIM_BANDWIDTH: "a simulated link bandwidth that is not positive",
  SIM_GUEST_SIZE: "a simulated guest size that is not a positive page count",
  SIM_WARMUP: "a simulated warm-up that is not a finite number of seconds ≥ 0",
  // codecs and the dedup index (XbzrleError, RleError, LzError, DedupError)
  XBZRLE_CORRUPT: "an XBZRLE encoding QEMU's decoder would reject",
  RLE_CORRUPT: "an input that is not a valid RLE page encoding",
  LZ_CORRUPT: "an input that is not a valid LZ page encoding",
  GUEST_EXISTS: "a dedup guest registered twice",
  GUEST_UNKNOWN: "a dedup guest that is not registered",
  // frames and page records (FrameError, RecordError)
  FRAME_MAGIC: "a frame header without the frame magic",
  FRAME_TRUNCATED: "a frame shorter than its header says",
  FRAME_TOO_LARGE: "a frame payload over the size limit",
  FRAME_CHECKSUM: "a frame whose checksum does not verify",
  FRAME_HMAC: "a frame whose HMAC does not verify",
  FRAME_KEY: "an unauthenticated frame where a key is configured, or the reverse",
  FRAME_SEQUENCE: "a frame out of sequence (dropped, replayed or reordered)",
  FRAME_BUFFER: "a frame buffer too small for the payload",
  RECORD_CORRUPT: "a malformed PAGES payload or page record",
  PAGE_OUT_OF_RANGE: "a page record or dedup reference past the end of memory",
  XBZRLE_OVERSIZE: "an XBZRLE record longer than a page",
  DEDUP_REFERENCE: "a dedup record naming an unknown guest",
  HMAC_UNAVAILABLE: "keyed frames without node:crypto",
  KEY_TOO_SHORT: "a pre-shared key shorter than 16 bytes",
  // protocol and engine (ProtocolError, MigrationAbortedError, PagewireError)
  PROTOCOL_VERSION: "a peer or frame speaking another protocol version",
  PROTOCOL_MISMATCH: "peers that disagree on page size, memory size or features",
  PROTOCOL_MESSAGE: "a control message that is malformed",
  PROTOCOL_STAGE: "a message that is not allowed at this stage of the migration",
  CONNECTION_CLOSED: "the connection closed before the migration ended, or a send after close",
  DIGEST_MISMATCH: "the whole-memory digests of source and destination differ",
  DIRTY_LOG_REQUIRED: "a live migration mode without a dirty log",
  SOURCE_ABORTED: "the source aborted the migration",
  MIGRATION_ABORTED: "the migration ended before the commit acknowledgement",
  CANCELLED: "the caller cancelled (AbortSignal) before the decision: the source runs the guest",
  ERROR: "a failure that is not a PagewireError, as a report or a peer's ABORT names it",
  MIGRATION_IN_DOUBT:
    "the connection failed between the decision and the peer learning it; neither side runs until resolved",
  NOT_IN_DOUBT: "resolve() called on a migration that is not in doubt",
  RESOLVE_REFUSED: "a resolution that would discard the newest memory",
  INTERRUPTED: "the receiver was stopped by a signal",
  SESSION_TAKEN: "a connection after another sender was accepted",
  MEMORY_TOO_LARGE: "a source whose memory exceeds the receiver's limit",
  // timeouts (MigrationTimeoutError): the peer said nothing in time
  TIMEOUT_HANDSHAKE: "no CHALLENGE, HELLO or WELCOME in time",
  TIMEOUT_RESUME: "no RESUME or answer to it in time on a new connection",
  TIMEOUT_RECEIVING: "the source sent no frame in time while the destination received",
  TIMEOUT_PREPARED: "no ACTIVATE in time after the commit acknowledgement",
  TIMEOUT_POSTCOPY: "the source sent no frame in time during post-copy",
  TIMEOUT_COMMIT: "no COMMIT_ACK in time after COMPLETE",
  TIMEOUT_ACTIVATION: "no ACTIVATED in time after ACTIVATE",
  TIMEOUT_SEND: "the peer took no data in time",
  // transports (TransportError)
  CONNECT_FAILED: "a TCP connection could not be made",
  LISTEN_FAILED: "a TCP listener could not be opened",
  CONNECTION_LOST: "a transport connection failed",
  CHANNEL_COUNT: "a data-channel count outside 0..16, or an endpoint without a port",
  CHANNEL_LOST: "a data channel's worker could not start or died",
  CHANNEL_PROTOCOL: "a data channel's worker got a message out of order (a bug)",
  PORT_MESSAGE: "a MessagePort delivered something that is not a frame",
  // files, recordings and traces
  FILE_OPEN: "a memory file could not be opened",
  FILE_SHORT: "a memory file ended early (shrunk while reading?)",
  FILE_SIZE: "a memory file that is not a whole number of pages, or not the size of its peer",
  FILE_CREATE: "a destination temporary file could not be created",
  FILE_CLOSED: "a memory file used after close",
  SCAN_WORKERS: "a hash-scan worker count that is not an integer in 1..64",
  SCAN_WORKER: "a hash-scan worker could not start, died, or the pool was closed during a scan",
  SCANNER_MISMATCH: "a parallel page scanner of another kernel or page count than its hash dirty log",
  OUT_EXISTS: "the output file exists and replacing it was not asked for",
  LOCK_HELD: "another receiver holds the output file's lock",
  LOCK_FAILED: "the output file's lock could not be taken",
  RECORDING_MISSING: "a recording file that cannot be read",
  RECORDING_CORRUPT: "a recording that does not parse",
  RECORD_SIZE: "a memory file to record that is not a whole number of pages",
  RECORD_READ: "a short read while recording a memory file",
  TRACE_SIZE: "a trace for a guest of another size",
  MEMORY_CHANGED: "a memory file that changed after the pause: the process writing it was not stopped",
  PAUSE_FAILED: "the signal or command that pauses or resumes the process writing a memory file failed",
  // QEMU (QmpError, QemuMigrationError)
  QMP_CONNECT: "the QMP socket is unreachable",
  QMP_TIMEOUT: "QEMU did not answer in time",
  QMP_CLOSED: "QEMU closed the QMP connection",
  QMP_PROTOCOL: "the QMP socket does not speak QMP",
  QMP_COMMAND: "QEMU answered a command with an error",
  QMP_MIGRATION_FAILED: "QEMU reported the migration failed",
  QEMU_STATE: "QEMU is in a run state the operation cannot start from",
  QEMU_EXITED: "the QEMU process exited before it answered",
  // QEMU's own migration stream (QemuStreamError, the qemu-proxy)
  QEMU_STREAM_MALFORMED: "QEMU's migration stream breaks its own format",
  QEMU_STREAM_UNSUPPORTED:
    "QEMU's migration stream uses something the proxy does not carry (another version, postcopy, multifd, block migration …)",
  QEMU_RETURN_PATH:
    "the source QEMU migrates without its return path, so it would finish before the destination has the guest",
  QEMU_STREAM_END: "QEMU's stream stopped before its end could be recognised",
  QEMU_LOAD_FAILED: "the destination QEMU did not load the rebuilt stream",
  QEMU_AUTOSTART: "the destination QEMU started the guest on its own (no -S) before the migration's decision",
  // command line (UsageError)
  USAGE: "a command line pagewire cannot read",
  BENCH_UNAVAILABLE: "pagewire bench without the benchmark suites and their dev dependencies (an installed package)",
} as const;

/** A stable error code: a key of ERROR_CODES. */
export type PagewireErrorCode = keyof typeof ERROR_CODES;

/** True when `code` is one of ERROR_CODES. */
export function isPagewireErrorCode(code: string): code is PagewireErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}

/**
 * Every error pagewire throws is a PagewireError with a stable `code` (for programs)
 * and a message that carries the numbers (for people).
 */
export class PagewireError extends Error {
  readonly code: PagewireErrorCode;
  constructor(code: PagewireErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The WebAssembly module could not be found, compiled or instantiated, or a debug kernel's assertion failed. */
export class KernelLoadError extends PagewireError {}

/** Kernel memory could not satisfy an allocation, or a region was misused. */
export class KernelMemoryError extends PagewireError {}

/** An argument is outside what the operation accepts (page index, sizes that differ …). */
export class PagewireRangeError extends PagewireError {}
