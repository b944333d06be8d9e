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
import { CACHED_PAGE_LIFETIME, PAGE_SIZE, SAVE_MISS_INSERTED, SAVE_MISS_NOT_INSERTED } from "./abi";
import { xbzrleEncode } from "./xbzrle";

/**
 * Runs QEMU's save_xbzrle_page for `count` pages whose indices (u32) are at `pageIdx`,
 * their contents at ram + index × 4096. Per page, `lengths` (i32) gets: n > 0 = an XBZRLE
 * encoding of n bytes packed at `out` (count × 4096 bytes), 0 = unchanged (send nothing),
 * -1 = overflow (send the page raw: its bytes are in the cache slot, or in RAM at the last
 * stage), -2 = cache miss, inserted (send raw from the cache slot), -3 = cache miss, not
 * inserted (send raw from RAM). `scratch` (4096 bytes) receives a snapshot of each page
 * so that what is encoded and what is cached are the same bytes even when a guest writes
 * RAM meanwhile. Returns the total encoded bytes.
 */
export function xbzrleCacheSavePages(
  tags: usize, ages: usize, data: usize, slots: u32,
  ram: usize, pageIdx: usize, count: u32, generation: u32, lastStage: i32,
  scratch: usize, out: usize, lengths: usize, packed: i32,
): i32 {
  const mask = slots - 1;
  let total: i32 = 0;
  for (let p: u32 = 0; p < count; p++) {
    let idx = load<u32>(pageIdx + (<usize>p << 2));
    let slot = idx & mask;
    let tagAt = tags + (<usize>slot << 2);
    let ageAt = ages + (<usize>slot << 2);
    let cached = data + <usize>slot * PAGE_SIZE;
    // packed: the new pages are a batch, page p at ram + p × PAGE_SIZE (an engine snapshot)
    let src = ram + <usize>(packed ? p : idx) * PAGE_SIZE;
    let r: i32;
    if (load<u32>(tagAt) != idx + 1) {
      // miss: insert unless the slot holds another page that is still fresh
      let tag = load<u32>(tagAt);
      if (lastStage || (tag != 0 && load<u32>(ageAt) + CACHED_PAGE_LIFETIME > generation)) {
        r = SAVE_MISS_NOT_INSERTED;
      } else {
        memory.copy(cached, src, PAGE_SIZE);
        store<u32>(tagAt, idx + 1);
        store<u32>(ageAt, generation);
        r = SAVE_MISS_INSERTED;
      }
    } else {
      store<u32>(ageAt, generation);
      memory.copy(scratch, src, PAGE_SIZE);
      r = xbzrleEncode(cached, scratch, out + <usize>total, <i32>PAGE_SIZE);
      if (!lastStage && r != 0) memory.copy(cached, scratch, PAGE_SIZE);
      if (r > 0) total += r;
    }
    store<i32>(lengths + (<usize>p << 2), r);
  }
  return total;
}
