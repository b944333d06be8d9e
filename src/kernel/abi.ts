// The constants the TS layer shares with the kernels: the same names and values as
// assembly/abi.ts, which the module also exports as globals (test/kernel/abi.test.ts
// checks both ways). Only shared constants live here: every numeric export of this file
// must have a wasm counterpart.

// ---- pages ---------------------------------------------------------------------------------

/** Bytes in a guest page; every page kernel works on 4 KiB pages. */
export const PAGE_SIZE = 4096;
/** log2(PAGE_SIZE). */
export const PAGE_SHIFT = 12;

// ---- return codes --------------------------------------------------------------------------

/** xbzrleEncode: the encoding does not fit in dlen (QEMU sends the page raw). */
export const XBZRLE_OVERFLOW = -1;
/** xbzrleDecode: the input is not a valid XBZRLE encoding for a 4 KiB page. */
export const XBZRLE_CORRUPT = -1;
/** rleEncode: the encoding does not fit in dlen (send the page raw). */
export const RLE_OVERFLOW = -1;
/** rleDecode: the input is not a valid RLE encoding of a 4 KiB page. */
export const RLE_CORRUPT = -1;
/** XbzrleCache.savePages, per page: cache miss, page inserted (send raw; its bytes are in the cache slot). */
export const SAVE_MISS_INSERTED = -2;
/** XbzrleCache.savePages, per page: cache miss, not inserted (send raw from RAM). */
export const SAVE_MISS_NOT_INSERTED = -3;
/** QEMU's CACHED_PAGE_LIFETIME: an insert over another page is refused while its age + this > the sync count. */
export const CACHED_PAGE_LIFETIME = 2;
/** lzEncode: the encoding does not fit in dlen (send the page raw). */
export const LZ_OVERFLOW = -1;
/** lzDecode: the input is not a valid LZ encoding of a 4 KiB page. */
export const LZ_CORRUPT = -1;
/** Bytes of the hash table lzEncode works in (the caller's scratch): 4096 u16 positions. */
export const LZ_TABLE_BYTES = 8192;
/** hashPages / hashPageList: `bits` is neither 64 nor 128. */
export const HASH_BAD_BITS = -1;
/** Bytes of a kernel instance's hashing scratch (setScratch): 8 u64 accumulators, a 192-byte secret, a page hash, the zero page's hash. */
export const HASH_SCRATCH_BYTES = 288;
/** gatherPages: a page index is ≥ pageCount. */
export const GATHER_BAD_PAGE = -1;

/** XbzrleCache save counters (xbzrleCacheSavePages, encodePageBatch), u32 each at these offsets. */
export const XBZRLE_STATS_PAGES = 0;
export const XBZRLE_STATS_BYTES = 4;
export const XBZRLE_STATS_MISSES = 8;
export const XBZRLE_STATS_OVERFLOWS = 12;
/** Bytes of the save counters. */
export const XBZRLE_STATS_SIZE = 16;

// ---- page records (the wire's grammar: src/wire/page-record.ts) ----------------------------

/** Record kinds (RecordKind in src/wire/page-record.ts). */
export const RECORD_ZERO = 0;
export const RECORD_RAW = 1;
export const RECORD_XBZRLE = 2;
export const RECORD_RLE = 3;
export const RECORD_DEDUP = 4;
export const RECORD_LZ = 5;
/** kind:u8 reserved:u8 length:u16 page:u32. */
export const RECORD_HEADER_BYTES = 8;
/** round:u32 count:u32 before the first record of a PAGES payload. */
export const PAGES_HEADER_BYTES = 8;
/** Body bytes of a DEDUP record: guest:u16 reserved:u16 page:u32. */
export const DEDUP_RECORD_BYTES = 8;

// ---- encode pipeline context (assembly/encode-pipeline.ts) --------------------------------

/** Bytes of the context src/codec/encode-pipeline.ts fills in; u32 fields at these offsets. */
export const ENCODE_CONTEXT_BYTES = 128;
export const ENCODE_FLAGS = 0;
export const ENCODE_SEED_LO = 4;
export const ENCODE_SEED_HI = 8;
export const ENCODE_PAGE_COUNT = 12;
export const ENCODE_FILTER_HASHES = 16;
export const ENCODE_FILTER_KNOWN = 20;
export const ENCODE_DEDUP_TABLE = 24;
export const ENCODE_DEDUP_MASK = 28;
export const ENCODE_DEDUP_REVERSE = 32;
export const ENCODE_DEDUP_GUEST = 36;
export const ENCODE_DEDUP_BASE = 40;
export const ENCODE_CACHE_TAGS = 44;
export const ENCODE_CACHE_AGES = 48;
export const ENCODE_CACHE_DATA = 52;
export const ENCODE_CACHE_SLOTS = 56;
export const ENCODE_GENERATION = 60;
export const ENCODE_RLE_MAX = 64;
export const ENCODE_RLE_NEED = 68;
export const ENCODE_SCRATCH = 72;
/** Bytes of the scratch ENCODE_SCRATCH points at: the XBZRLE, RLE and LZ encodings (a page each), the LZ table. */
export const ENCODE_SCRATCH_BYTES = 3 * PAGE_SIZE + LZ_TABLE_BYTES;
export const ENCODE_LZ_MAX = 76;
/** Out: the batch's counts, u32 each. */
export const ENCODE_SKIPPED = 80;
export const ENCODE_ZEROS = 84;
export const ENCODE_DEDUPS = 88;
export const ENCODE_XBZRLES = 92;
export const ENCODE_RLES = 96;
export const ENCODE_RAWS = 100;
/** Out: the batch's XBZRLE save counters (XBZRLE_STATS_* from here). */
export const ENCODE_XBZRLE_STATS = 104;
/** Out: this batch's LZ record count (u32). */
export const ENCODE_LZS = 120;
/** ENCODE_FLAGS bits. */
export const ENCODE_FLAG_ZERO = 1;
export const ENCODE_FLAG_XBZRLE = 2;
export const ENCODE_FLAG_RLE = 4;
export const ENCODE_FLAG_SEND_ALL = 8;
export const ENCODE_FLAG_LAST_STAGE = 16;
export const ENCODE_FLAG_LZ = 32;
/** encodePageBatch: a page index ≥ the page count (nothing was encoded). */
export const ENCODE_BAD_PAGE = -1;

// ---- page applier context (assembly/page-applier.ts) --------------------------------------

/** Bytes of the context src/codec/page-applier.ts fills in; u32 fields at these offsets. */
export const APPLY_CONTEXT_BYTES = 64;
export const APPLY_RAM = 0;
export const APPLY_PAGE_COUNT = 4;
export const APPLY_DIGEST_TABLE = 8;
export const APPLY_DIGEST_BITS = 12;
export const APPLY_SEED_LO = 16;
export const APPLY_SEED_HI = 20;
/** In: where to start (PAGES_HEADER_BYTES for the first record); out: where the call stopped. */
export const APPLY_OFFSET = 24;
/** In/out: the index of that record. */
export const APPLY_INDEX = 28;
/** Out: ZERO records of the call whose page was already zero (not written). */
export const APPLY_UNWRITTEN = 32;
/** applyPageRecords: every record applied; stopped before a DEDUP record naming another guest. */
export const APPLY_DONE = 0;
export const APPLY_FOREIGN_DEDUP = 1;
/** applyPageRecords errors, at the record of APPLY_OFFSET / APPLY_INDEX. */
export const APPLY_PAYLOAD_SHORT = -1;
export const APPLY_HEADER_TRUNCATED = -2;
export const APPLY_KIND_UNKNOWN = -3;
export const APPLY_PAGE_RANGE = -4;
export const APPLY_BODY_TRUNCATED = -5;
export const APPLY_LENGTH = -6;
export const APPLY_TRAILING_BYTES = -7;
export const APPLY_DEDUP_RANGE = -8;
export const APPLY_XBZRLE_CORRUPT = -9;
export const APPLY_RLE_CORRUPT = -10;
export const APPLY_LZ_CORRUPT = -11;

// ---- dedup table (assembly/dedup-index.ts) ------------------------------------------------------

/** Kernel marker for "no reference". */
export const DEDUP_NONE = 0xffffffff;
/** Bytes of the table header (u64 counters) before the first bucket. */
export const DEDUP_HEADER_BYTES = 64;
/** Header offsets (bytes) of the u64 counters. */
export const DEDUP_HEADER_HITS = 0;
export const DEDUP_HEADER_MISSES = 8;
export const DEDUP_HEADER_EVICTIONS = 16;
export const DEDUP_HEADER_INSERTS = 24;
export const DEDUP_HEADER_DROPS = 32;
export const DEDUP_HEADER_STAMP = 40;
/** Entries per bucket (set associativity). */
export const DEDUP_WAYS = 4;
/** Bytes per entry. */
export const DEDUP_ENTRY_BYTES = 32;
/** Bytes per bucket. */
export const DEDUP_BUCKET_BYTES = DEDUP_WAYS * DEDUP_ENTRY_BYTES;

// ---- page history (assembly/page-history.ts draws the header) ----------------------------------

/** Bytes of the history header. */
export const HISTORY_HEADER_BYTES = 128;
/** Header offsets (bytes) of the u32 fields. */
export const HISTORY_HEADER_PAGES = 0;
export const HISTORY_HEADER_WORDS = 4;
export const HISTORY_HEADER_COUNTS = 8;
export const HISTORY_HEADER_SENT = 12;
export const HISTORY_HEADER_STAMPS = 16;
export const HISTORY_HEADER_DISTS = 20;
export const HISTORY_HEADER_FEN = 24;
export const HISTORY_HEADER_CAP = 28;
export const HISTORY_HEADER_NEXT = 32;
export const HISTORY_HEADER_LIVE = 36;
export const HISTORY_HEADER_COMPACTIONS = 40;
export const HISTORY_HEADER_RING = 44;
export const HISTORY_HEADER_HEAD = 48;
export const HISTORY_HEADER_ROUNDS = 52;
export const HISTORY_HEADER_OWNER = 56;
export const HISTORY_HEADER_ACTIVE = 60;
export const HISTORY_HEADER_MIN_ACTIVE = 64;
/** historyGather / historyFilter field ids. */
export const HISTORY_FIELD_COUNT = 0;
export const HISTORY_FIELD_DISTANCE = 1;
export const HISTORY_FIELD_SENT = 2;
/** Rounds of dirty bits kept per page. */
export const HISTORY_ROUNDS = 8;
/** Saturation value of the per-page dirty count. */
export const MAX_DIRTY_COUNT = 255;
/** Reuse distance of a page dirtied once or never, as the kernel stores it. */
export const HISTORY_NO_DISTANCE = 0xffffffff;
/** historyRecordWrites: a page index in the trace is ≥ pageCount (nothing recorded). */
export const HISTORY_ERR_PAGE = -1;
/** historyRecordWrites / historyRecordRound: the reuse-distance tracker was not allocated. */
export const HISTORY_ERR_NO_TRACKER = -2;
