// The constants the kernels share with TypeScript: page geometry, return codes, and the
// layouts of the headers the TS layer fills in. Each is exported from the module as a
// WebAssembly global; src/kernel/abi.ts holds the same names and values, and
// test/kernel/abi.test.ts checks the two against each other.

// ---- pages ---------------------------------------------------------------------------------

/** Bytes in a guest page: x86 base pages, QEMU's TARGET_PAGE_SIZE for x86 targets. */
export const PAGE_SIZE: usize = 4096;
/** log2(PAGE_SIZE). */
export const PAGE_SHIFT: usize = 12;

// ---- return codes (assembly/xbzrle.ts, rle.ts, cache.ts, pagehash.ts, gather.ts) -----------

/** The XBZRLE encoding does not fit in dlen (QEMU sends the page raw). */
export const XBZRLE_OVERFLOW: i32 = -1;
/** The input is not a valid XBZRLE encoding for a 4 KiB page. */
export const XBZRLE_CORRUPT: i32 = -1;
/** The RLE encoding does not fit in dlen (send the page raw). */
export const RLE_OVERFLOW: i32 = -1;
/** The input is not a valid RLE encoding of a 4 KiB page. */
export const RLE_CORRUPT: i32 = -1;
/** xbzrleCacheSavePages, per page: cache miss, page inserted (send raw from the cache slot). */
export const SAVE_MISS_INSERTED: i32 = -2;
/** xbzrleCacheSavePages, per page: cache miss, not inserted (send raw from RAM). */
export const SAVE_MISS_NOT_INSERTED: i32 = -3;
/** An insert over another page's entry is refused while its age + this > the sync count (QEMU). */
export const CACHED_PAGE_LIFETIME: u32 = 2;
/** lzEncode: the encoding does not fit in dlen (send the page raw). */
export const LZ_OVERFLOW: i32 = -1;
/** lzDecode: the input is not a valid LZ encoding of a 4 KiB page. */
export const LZ_CORRUPT: i32 = -1;
/** Bytes of the hash table lzEncode works in (the caller's scratch): 4096 u16 positions. */
export const LZ_TABLE_BYTES: usize = 8192;
/** hashPages / hashPageList: `bits` is neither 64 nor 128. */
export const HASH_BAD_BITS: i32 = -1;
/** Bytes of per-instance hashing scratch (setScratch): 8 u64 accumulators, a 192-byte secret, a page hash, the zero page's hash. */
export const HASH_SCRATCH_BYTES: usize = 288;
/** gatherPages: a page index is ≥ pageCount. */
export const GATHER_BAD_PAGE: i32 = -1;

/** xbzrleCacheSavePages / encodePageBatch: save counters, u32 each, at these offsets (QEMU's xbzrle_counters). */
export const XBZRLE_STATS_PAGES: usize = 0;
export const XBZRLE_STATS_BYTES: usize = 4;
export const XBZRLE_STATS_MISSES: usize = 8;
export const XBZRLE_STATS_OVERFLOWS: usize = 12;
/** Bytes of the save counters. */
export const XBZRLE_STATS_SIZE: usize = 16;

// ---- page records (the wire's grammar: src/wire/page-record.ts) ----------------------------

/** Record kinds. */
export const RECORD_ZERO: u32 = 0;
export const RECORD_RAW: u32 = 1;
export const RECORD_XBZRLE: u32 = 2;
export const RECORD_RLE: u32 = 3;
export const RECORD_DEDUP: u32 = 4;
export const RECORD_LZ: u32 = 5;
/** kind:u8 reserved:u8 length:u16 page:u32. */
export const RECORD_HEADER_BYTES: usize = 8;
/** round:u32 count:u32 before the first record of a PAGES payload. */
export const PAGES_HEADER_BYTES: usize = 8;
/** Body bytes of a DEDUP record: guest:u16 reserved:u16 page:u32. */
export const DEDUP_RECORD_BYTES: usize = 8;

// ---- encode pipeline context (assembly/encode-pipeline.ts) --------------------------------

/** Bytes of the context the TS wrapper fills in; u32 fields at these offsets. */
export const ENCODE_CONTEXT_BYTES: usize = 128;
export const ENCODE_FLAGS: usize = 0;
export const ENCODE_SEED_LO: usize = 4;
export const ENCODE_SEED_HI: usize = 8;
export const ENCODE_PAGE_COUNT: usize = 12;
export const ENCODE_FILTER_HASHES: usize = 16;
export const ENCODE_FILTER_KNOWN: usize = 20;
export const ENCODE_DEDUP_TABLE: usize = 24;
export const ENCODE_DEDUP_MASK: usize = 28;
export const ENCODE_DEDUP_REVERSE: usize = 32;
export const ENCODE_DEDUP_GUEST: usize = 36;
export const ENCODE_DEDUP_BASE: usize = 40;
export const ENCODE_CACHE_TAGS: usize = 44;
export const ENCODE_CACHE_AGES: usize = 48;
export const ENCODE_CACHE_DATA: usize = 52;
export const ENCODE_CACHE_SLOTS: usize = 56;
export const ENCODE_GENERATION: usize = 60;
export const ENCODE_RLE_MAX: usize = 64;
export const ENCODE_RLE_NEED: usize = 68;
export const ENCODE_SCRATCH: usize = 72;
/** Bytes of the scratch ENCODE_SCRATCH points at: the XBZRLE, RLE and LZ encodings (a page each), the LZ table. */
export const ENCODE_SCRATCH_BYTES: usize = 3 * PAGE_SIZE + LZ_TABLE_BYTES;
export const ENCODE_LZ_MAX: usize = 76;
/** Out: this batch's counts, u32 each (skipped, zero, dedup, xbzrle, rle, raw). */
export const ENCODE_SKIPPED: usize = 80;
export const ENCODE_ZEROS: usize = 84;
export const ENCODE_DEDUPS: usize = 88;
export const ENCODE_XBZRLES: usize = 92;
export const ENCODE_RLES: usize = 96;
export const ENCODE_RAWS: usize = 100;
/** Out: this batch's XBZRLE save counters (XBZRLE_STATS_* from here). */
export const ENCODE_XBZRLE_STATS: usize = 104;
/** Out: this batch's LZ record count (u32). */
export const ENCODE_LZS: usize = 120;
/** ENCODE_FLAGS bits. */
export const ENCODE_FLAG_ZERO: u32 = 1;
export const ENCODE_FLAG_XBZRLE: u32 = 2;
export const ENCODE_FLAG_RLE: u32 = 4;
export const ENCODE_FLAG_SEND_ALL: u32 = 8;
export const ENCODE_FLAG_LAST_STAGE: u32 = 16;
export const ENCODE_FLAG_LZ: u32 = 32;
/** encodePageBatch: a page index ≥ the page count (nothing was encoded). */
export const ENCODE_BAD_PAGE: i32 = -1;

// ---- page applier context (assembly/page-applier.ts) --------------------------------------

/** Bytes of the context the TS wrapper fills in; u32 fields at these offsets. */
export const APPLY_CONTEXT_BYTES: usize = 64;
export const APPLY_RAM: usize = 0;
export const APPLY_PAGE_COUNT: usize = 4;
export const APPLY_DIGEST_TABLE: usize = 8;
export const APPLY_DIGEST_BITS: usize = 12;
export const APPLY_SEED_LO: usize = 16;
export const APPLY_SEED_HI: usize = 20;
/** In: where to start (PAGES_HEADER_BYTES for the first record); out: where the call stopped. */
export const APPLY_OFFSET: usize = 24;
/** In/out: the index of that record. */
export const APPLY_INDEX: usize = 28;
/** Out: ZERO records of this call whose page was already zero (not written). */
export const APPLY_UNWRITTEN: usize = 32;
/** applyPageRecords results: every record applied; stopped at a DEDUP record naming another guest (the caller applies it). */
export const APPLY_DONE: i32 = 0;
export const APPLY_FOREIGN_DEDUP: i32 = 1;
/** Errors: the record at APPLY_OFFSET (nothing of it written; the records before it are applied). */
export const APPLY_PAYLOAD_SHORT: i32 = -1;
export const APPLY_HEADER_TRUNCATED: i32 = -2;
export const APPLY_KIND_UNKNOWN: i32 = -3;
export const APPLY_PAGE_RANGE: i32 = -4;
export const APPLY_BODY_TRUNCATED: i32 = -5;
export const APPLY_LENGTH: i32 = -6;
export const APPLY_TRAILING_BYTES: i32 = -7;
export const APPLY_DEDUP_RANGE: i32 = -8;
export const APPLY_XBZRLE_CORRUPT: i32 = -9;
export const APPLY_RLE_CORRUPT: i32 = -10;
export const APPLY_LZ_CORRUPT: i32 = -11;

// ---- dedup table (assembly/dedup.ts) ------------------------------------------------------

/** No reference (a miss) in dedupApply's output. */
export const DEDUP_NONE: u32 = 0xffffffff;
/** Bytes of the table header (u64 counters) before the first bucket. */
export const DEDUP_HEADER_BYTES: usize = 64;
/** Header offsets (bytes) of the u64 counters. */
export const DEDUP_HEADER_HITS: usize = 0;
export const DEDUP_HEADER_MISSES: usize = 8;
export const DEDUP_HEADER_EVICTIONS: usize = 16;
export const DEDUP_HEADER_INSERTS: usize = 24;
export const DEDUP_HEADER_DROPS: usize = 32;
export const DEDUP_HEADER_STAMP: usize = 40;
/** Entries per bucket (set associativity). */
export const DEDUP_WAYS: usize = 4;
/** Bytes per entry: hashLo:u64 hashHi:u64 guest:u32 page:u32 holder:u32 stamp:u32. */
export const DEDUP_ENTRY_BYTES: usize = 32;
/** Bytes per bucket. */
export const DEDUP_BUCKET_BYTES: usize = DEDUP_WAYS * DEDUP_ENTRY_BYTES;

// ---- page history (assembly/history.ts; the header layout is drawn there) -----------------

/** Bytes of the history header the TS wrapper allocates. */
export const HISTORY_HEADER_BYTES: u32 = 128;
/** Header offsets (bytes) of the u32 fields. */
export const HISTORY_HEADER_PAGES: usize = 0;
export const HISTORY_HEADER_WORDS: usize = 4;
export const HISTORY_HEADER_COUNTS: usize = 8;
export const HISTORY_HEADER_SENT: usize = 12;
export const HISTORY_HEADER_STAMPS: usize = 16;
export const HISTORY_HEADER_DISTS: usize = 20;
export const HISTORY_HEADER_FEN: usize = 24;
export const HISTORY_HEADER_CAP: usize = 28;
export const HISTORY_HEADER_NEXT: usize = 32;
export const HISTORY_HEADER_LIVE: usize = 36;
export const HISTORY_HEADER_COMPACTIONS: usize = 40;
export const HISTORY_HEADER_RING: usize = 44;
export const HISTORY_HEADER_HEAD: usize = 48;
export const HISTORY_HEADER_ROUNDS: usize = 52;
export const HISTORY_HEADER_OWNER: usize = 56;
export const HISTORY_HEADER_ACTIVE: usize = 60;
export const HISTORY_HEADER_MIN_ACTIVE: usize = 64;
/** historyGather / historyFilter field ids. */
export const HISTORY_FIELD_COUNT: u32 = 0;
export const HISTORY_FIELD_DISTANCE: u32 = 1;
export const HISTORY_FIELD_SENT: u32 = 2;
/** Rounds of dirty bits kept per page (the ring; a power of two). */
export const HISTORY_ROUNDS: u32 = 8;
/** Saturation value of the per-page dirty count (u8). */
export const MAX_DIRTY_COUNT: u32 = 255;
/** Reuse distance of a page dirtied once or never. */
export const HISTORY_NO_DISTANCE: u32 = 0xffffffff;
/** historyRecordWrites: a page index in the trace is ≥ pageCount (nothing recorded). */
export const HISTORY_ERR_PAGE: i32 = -1;
/** historyRecordWrites / historyRecordRound: the reuse-distance tracker was not allocated. */
export const HISTORY_ERR_NO_TRACKER: i32 = -2;
