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
/** hashPages / hashPageList: `bits` is neither 64 nor 128. */
export const HASH_BAD_BITS = -1;
/** Bytes of a kernel instance's hashing scratch (setScratch): 8 u64 accumulators, a 192-byte secret. */
export const HASH_SCRATCH_BYTES = 256;
/** gatherPages: a page index is ≥ pageCount. */
export const GATHER_BAD_PAGE = -1;

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
