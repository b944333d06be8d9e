// Fake-dirty filter: the per-page "last sent" table of src/codec/fake-dirty.ts and its
// decision, shared by the filter's batch call and the encode pipeline kernel.
//
// Layout (kernel memory set up by the TS wrapper):
//   hashes u64[pageCount][2]   XXH3-128 (low, high) of what was last sent of the page
//   known  u8[pageCount]       1 once the page was sent (its hash is meaningful)
//
// Rule: a dirty page whose hash equals the last sent one, and is known, is skipped;
// any other page is recorded as sent with its new hash.

/** Records that page `page` was sent with content hash (lo, hi). */
@inline export function recordSentPage(hashes: usize, known: usize, page: u32, lo: u64, hi: u64): void {
  const h = hashes + (<usize>page << 4);
  store<u64>(h, lo);
  store<u64>(h, hi, 8);
  store<u8>(known + <usize>page, 1);
}

/** True (skip the page) when page `page` is known and was last sent with hash (lo, hi); else records it as sent. */
@inline export function unchangedSinceSent(hashes: usize, known: usize, page: u32, lo: u64, hi: u64): bool {
  const h = hashes + (<usize>page << 4);
  if (load<u8>(known + <usize>page) != 0 && load<u64>(h) == lo && load<u64>(h, 8) == hi) return true;
  recordSentPage(hashes, known, page, lo, hi);
  return false;
}

/**
 * For each i < count: skip[i] (u8) = 1 when page pages[i] (u32) with content hash
 * (newHashes[2i], newHashes[2i+1]) is unchanged since last sent, else 0 and the page is
 * recorded as sent. Returns the number skipped. The caller checks the page indices.
 */
export function filterUnchangedPages(hashes: usize, known: usize, pages: usize, newHashes: usize, count: u32, skip: usize): u32 {
  let skipped: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const h = newHashes + (<usize>i << 4);
    const s = unchangedSinceSent(hashes, known, load<u32>(pages + (<usize>i << 2)), load<u64>(h), load<u64>(h, 8));
    store<u8>(skip + <usize>i, s ? 1 : 0);
    if (s) skipped++;
  }
  return skipped;
}
