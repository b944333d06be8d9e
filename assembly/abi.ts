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
/** hashPages / hashPageList: `bits` is neither 64 nor 128. */
export const HASH_BAD_BITS: i32 = -1;
/** Bytes of per-instance hashing scratch (setScratch): 8 u64 accumulators, a 192-byte secret. */
export const HASH_SCRATCH_BYTES: usize = 256;
/** gatherPages: a page index is ≥ pageCount. */
export const GATHER_BAD_PAGE: i32 = -1;

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
