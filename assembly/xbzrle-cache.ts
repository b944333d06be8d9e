// XBZRLE page cache with QEMU page_cache semantics, and the batch "save pages" step of
// QEMU's save_xbzrle_page over it.
//
// Layout (one kernel region, set up by src/codec/xbzrle-cache.ts):
//   tags  u32[slots]          page index + 1 of the cached page, 0 = empty slot
//   ages  u32[slots]          dirty-sync count when the entry was inserted or last hit
//   data  u8[slots][4096]     the page as last sent
// slots is a power of two; page p lives in slot p & (slots - 1) (direct-mapped).
//
// Rules (QEMU): a lookup hit refreshes the entry's age to the current sync count; an
// insert over an entry holding another page is refused while age + 2 > now
// (CACHED_PAGE_LIFETIME); a page that hits is encoded against the cached copy, and the
// cache copy is replaced by the page as encoded unless the page was unchanged or this is
// the last stage (the guest is paused, nothing will be sent after).
//
// see: migration/page_cache.c (cache_is_cached, cache_insert, cache_get_cache_pos),
//      migration/ram.c (save_xbzrle_page), migration/xbzrle.c

// Per-page results of xbzrleCacheSavePages: n > 0, 0 and XBZRLE_OVERFLOW from the encoder,
// SAVE_MISS_INSERTED / SAVE_MISS_NOT_INSERTED on a cache miss.
import {
  CACHED_PAGE_LIFETIME, PAGE_SIZE, SAVE_MISS_INSERTED, SAVE_MISS_NOT_INSERTED, XBZRLE_OVERFLOW,
  XBZRLE_STATS_BYTES, XBZRLE_STATS_MISSES, XBZRLE_STATS_OVERFLOWS, XBZRLE_STATS_PAGES, XBZRLE_STATS_SIZE,
} from "./abi";
import { xbzrleEncode } from "./xbzrle";

/**
 * QEMU's save_xbzrle_page for one page `idx` whose new content is at `cur` and stays put
 * during the call (a snapshot): on a miss inserts it unless the slot holds another page
 * that is still fresh (never at the last stage); on a hit refreshes the age, encodes
 * against the cached copy into `out` (4096 bytes) and, unless unchanged or at the last
 * stage, replaces the cached copy. Returns the per-page result (see above). Shared with
 * the encode pipeline kernel.
 */
@inline export function saveCachedPage(
  tags: usize, ages: usize, data: usize, mask: u32,
  idx: u32, cur: usize, generation: u32, lastStage: bool, out: usize,
): i32 {
  const slot = idx & mask;
  const tagAt = tags + (<usize>slot << 2);
  const ageAt = ages + (<usize>slot << 2);
  const cached = data + <usize>slot * PAGE_SIZE;
  if (load<u32>(tagAt) != idx + 1) {
    // miss: insert unless the slot holds another page that is still fresh
    const tag = load<u32>(tagAt);
    if (lastStage || (tag != 0 && load<u32>(ageAt) + CACHED_PAGE_LIFETIME > generation)) return SAVE_MISS_NOT_INSERTED;
    memory.copy(cached, cur, PAGE_SIZE);
    store<u32>(tagAt, idx + 1);
    store<u32>(ageAt, generation);
    return SAVE_MISS_INSERTED;
  }
  store<u32>(ageAt, generation);
  const r = xbzrleEncode(cached, cur, out, <i32>PAGE_SIZE);
  if (!lastStage && r != 0) memory.copy(cached, cur, PAGE_SIZE);
  return r;
}

/** True when the cache holds a copy of page `idx`. */
@inline export function isCachedPage(tags: usize, mask: u32, idx: u32): bool {
  return load<u32>(tags + (<usize>(idx & mask) << 2)) == idx + 1;
}

/**
 * Adds one save result to the counters at `stats` (u32 each, XBZRLE_STATS_* offsets), as
 * QEMU's xbzrle_counters count them: a hit is a page (bytes: encoding + 3 header bytes, or
 * 4096 on overflow), a miss a cache miss.
 */
@inline export function countSave(stats: usize, r: i32): void {
  if (r >= 0 || r == XBZRLE_OVERFLOW) {
    store<u32>(stats + XBZRLE_STATS_PAGES, load<u32>(stats + XBZRLE_STATS_PAGES) + 1);
    if (r > 0) store<u32>(stats + XBZRLE_STATS_BYTES, load<u32>(stats + XBZRLE_STATS_BYTES) + <u32>r + 3);
    else if (r == XBZRLE_OVERFLOW) {
      store<u32>(stats + XBZRLE_STATS_OVERFLOWS, load<u32>(stats + XBZRLE_STATS_OVERFLOWS) + 1);
      store<u32>(stats + XBZRLE_STATS_BYTES, load<u32>(stats + XBZRLE_STATS_BYTES) + <u32>PAGE_SIZE);
    }
  } else store<u32>(stats + XBZRLE_STATS_MISSES, load<u32>(stats + XBZRLE_STATS_MISSES) + 1);
}

/**
 * Runs QEMU's save_xbzrle_page for `count` pages whose indices (u32) are at `pageIdx`,
 * their contents at ram + index × 4096. Per page, `lengths` (i32) gets: n > 0 = an XBZRLE
 * encoding of n bytes packed at `out` (count × 4096 bytes), 0 = unchanged (send nothing),
 * -1 = overflow (send the page raw: its bytes are in the cache slot, or in RAM at the last
 * stage), -2 = cache miss, inserted (send raw from the cache slot), -3 = cache miss, not
 * inserted (send raw from RAM). `scratch` (4096 bytes) receives a snapshot of each page
 * that hits so that what is encoded and what is cached are the same bytes even when a
 * guest writes RAM meanwhile. The counters at `stats` (XBZRLE_STATS_BYTES bytes) are set
 * to this batch's. Returns the total encoded bytes.
 */
export function xbzrleCacheSavePages(
  tags: usize, ages: usize, data: usize, slots: u32,
  ram: usize, pageIdx: usize, count: u32, generation: u32, lastStage: i32,
  scratch: usize, out: usize, lengths: usize, packed: i32, stats: usize,
): i32 {
  const mask = slots - 1;
  memory.fill(stats, 0, XBZRLE_STATS_SIZE);
  let total: i32 = 0;
  for (let p: u32 = 0; p < count; p++) {
    const idx = load<u32>(pageIdx + (<usize>p << 2));
    // packed: the new pages are a batch, page p at ram + p × PAGE_SIZE (an engine snapshot)
    let cur = ram + <usize>(packed ? p : idx) * PAGE_SIZE;
    if (isCachedPage(tags, mask, idx)) {
      memory.copy(scratch, cur, PAGE_SIZE);
      cur = scratch;
    }
    const r = saveCachedPage(tags, ages, data, mask, idx, cur, generation, lastStage != 0, out + <usize>total);
    countSave(stats, r);
    if (r > 0) total += r;
    store<i32>(lengths + (<usize>p << 2), r);
  }
  return total;
}
