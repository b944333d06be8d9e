// Dedup content index: 128-bit page hash -> a (guest, page) the destination is known to
// hold with that content. One index can serve several guests migrated to the same
// destination (gang migration): the guest id is part of the reference.
//
// Layout (all in caller-provided kernel memory; sizes and offsets: DEDUP_* in assembly/abi.ts):
//   table   = header:u64[8] bucket[bucketCount]        bucketCount a power of two
//   header  = hits misses evictions inserts drops stamp 0 0
//   bucket  = entry[4]                                  4-way set-associative, 128 bytes
//   entry   = hashLo:u64 hashHi:u64 guest:u32 page:u32 holder:u32 stamp:u32   (32 bytes)
//             holder = global page + 1, 0 for an empty entry
//   reverse = u32[global pages]: slot + 1 of the entry whose content that page holds, or 0
// A global page number is the guest's base (assigned by the TS layer) + its page index.
//
// Invariant: an entry exists only while its page holds the entry's content at the
// destination. Every write of a destination page goes through dedupApply (the page now
// holds a known hash) or dedupInvalidate (unknown content); both first drop the entry the
// page held (found through `reverse`), so a reference can never point at content that
// has since been overwritten.
//
// Eviction rule: a key goes to bucket (hashLo & bucketMask); when all 4 ways are taken
// the way used least recently (oldest stamp; hits refresh the stamp) is evicted.
// When a key is already indexed at another page, the existing (older) holder is kept.
//
// see: Deshpande et al., "Gang migration of virtual machines using cluster-wide
// deduplication" (2013) for cross-guest dedup; Zhang et al., "Exploiting data
// deduplication to accelerate live VM migration" (2010).

import {
  DEDUP_BUCKET_BYTES, DEDUP_HEADER_BYTES, DEDUP_HEADER_DROPS, DEDUP_HEADER_EVICTIONS, DEDUP_HEADER_HITS,
  DEDUP_HEADER_INSERTS, DEDUP_HEADER_MISSES, DEDUP_HEADER_STAMP, DEDUP_NONE, DEDUP_WAYS,
} from "./abi";

@inline function entryAt(table: usize, slot: u32): usize {
  return table + DEDUP_HEADER_BYTES + (<usize>slot << 5);
}

@inline function bump(table: usize, field: usize, by: u64 = 1): void {
  store<u64>(table + field, load<u64>(table + field) + by);
}

/** Empties the entry held by global page `g` (if any). */
@inline function dropHolder(table: usize, reverse: usize, g: u32): void {
  const r = reverse + (<usize>g << 2);
  const slot1 = load<u32>(r);
  if (slot1 != 0) {
    store<u32>(entryAt(table, slot1 - 1), 0, 24);
    store<u32>(r, 0);
    bump(table, DEDUP_HEADER_DROPS);
  }
}

/** Clears `bucketCount` buckets and the counters. */
export function dedupReset(table: usize, bucketCount: u32): void {
  memory.fill(table, 0, DEDUP_HEADER_BYTES + <usize>bucketCount * DEDUP_BUCKET_BYTES);
}

/**
 * Page `page` of guest `guest` (global page base + page) is about to be written at the
 * destination with content hash (lo, hi): looks the hash up, then records that the page
 * now holds it (drops the entry the page held before, inserts the new one unless the hash
 * is already held elsewhere; `stamp` is the LRU stamp of this step). Returns the entry
 * slot found by the lookup (its guest and page at entry offsets 16 and 20 are the
 * reference to send; they are left as they were), or -1. Counters other than inserts,
 * evictions and drops are the caller's. Shared with the encode pipeline kernel.
 */
@inline export function dedupStep(table: usize, bucketMask: u32, reverse: usize, guest: u32, base: u32, page: u32, lo: u64, hi: u64, stamp: u32): i32 {
  const g = base + page;
  // 1. look the content up
  const bucket = (<u32>lo & bucketMask) * <u32>DEDUP_WAYS;
  let found: i32 = -1;
  for (let w: u32 = 0; w < <u32>DEDUP_WAYS; w++) {
    const e = entryAt(table, bucket + w);
    if (load<u32>(e, 24) != 0 && load<u64>(e) == lo && load<u64>(e, 8) == hi) {
      found = <i32>(bucket + w);
      break;
    }
  }
  // 2. the page now holds this content
  const r = reverse + (<usize>g << 2);
  if (found >= 0) {
    store<u32>(entryAt(table, <u32>found), stamp, 28); // refresh (LRU)
    if (load<u32>(r) != <u32>found + 1) dropHolder(table, reverse, g); // keep the existing holder
    return found;
  }
  dropHolder(table, reverse, g);
  // insert: a free way, else the least recently used one
  let victim = bucket;
  let oldest: u32 = 0;
  for (let w: u32 = 0; w < <u32>DEDUP_WAYS; w++) {
    const e = entryAt(table, bucket + w);
    if (load<u32>(e, 24) == 0) {
      victim = bucket + w;
      oldest = 0xffffffff;
      break;
    }
    const age = stamp - load<u32>(e, 28);
    if (age >= oldest) {
      oldest = age;
      victim = bucket + w;
    }
  }
  const e = entryAt(table, victim);
  const holder = load<u32>(e, 24);
  if (holder != 0) {
    store<u32>(reverse + (<usize>(holder - 1) << 2), 0);
    bump(table, DEDUP_HEADER_EVICTIONS);
  }
  store<u64>(e, lo);
  store<u64>(e, hi, 8);
  store<u32>(e, guest, 16);
  store<u32>(e, page, 20);
  store<u32>(e, g + 1, 24);
  store<u32>(e, stamp, 28);
  store<u32>(r, victim + 1);
  bump(table, DEDUP_HEADER_INSERTS);
  return -1;
}

/** Entry of `slot` (as dedupStep returns it): the reference's guest and page are at offsets 16 and 20. */
@inline export function dedupEntry(table: usize, slot: u32): usize {
  return entryAt(table, slot);
}

/** Adds a batch's hits and misses to the table's counters and stores its last LRU stamp. */
@inline export function dedupCount(table: usize, hits: u32, misses: u32, stamp: u32): void {
  store<u64>(table + DEDUP_HEADER_STAMP, <u64>stamp);
  bump(table, DEDUP_HEADER_HITS, hits);
  bump(table, DEDUP_HEADER_MISSES, misses);
}

/** The table's LRU stamp (the last one dedupStep used). */
@inline export function dedupStamp(table: usize): u32 {
  return <u32>load<u64>(table + DEDUP_HEADER_STAMP);
}

/**
 * For each i < count: page `pages[i]` of guest `guest` (global page base + pages[i]) is
 * about to be written at the destination with content hash (hashes[2i], hashes[2i+1]).
 * When `lookup` is non-zero, first looks the hash up: on a hit writes the reference
 * (guest, page) at out[2i], out[2i+1] (u32 each), on a miss writes DEDUP_NONE at out[2i],
 * and counts hits and misses. Then records that the page now holds that content (drops
 * the entry the page held before, inserts the new one unless the hash is already held
 * elsewhere). Returns the number of hits. Cost: ~2 cache misses per page.
 * The caller checks that pages are below the guest's page count.
 */
export function dedupApply(table: usize, bucketMask: u32, reverse: usize, guest: u32, base: u32, pages: usize, hashes: usize, count: u32, out: usize, lookup: u32): u32 {
  let stamp = dedupStamp(table);
  let hits: u32 = 0;
  let misses: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const page = load<u32>(pages + (<usize>i << 2));
    const lo = load<u64>(hashes + (<usize>i << 4));
    const hi = load<u64>(hashes + (<usize>i << 4), 8);
    const found = dedupStep(table, bucketMask, reverse, guest, base, page, lo, hi, ++stamp);
    if (!lookup) continue;
    const o = out + (<usize>i << 3);
    if (found >= 0) {
      const e = entryAt(table, <u32>found);
      store<u32>(o, load<u32>(e, 16));
      store<u32>(o, load<u32>(e, 20), 4);
      hits++;
    } else {
      store<u32>(o, DEDUP_NONE);
      store<u32>(o, 0, 4);
      misses++;
    }
  }
  dedupCount(table, hits, misses, stamp);
  return hits;
}

/**
 * Pages `pages[i]` (i < count) of the guest at global base `base` were overwritten at the
 * destination with content the index does not know: drops their entries.
 */
export function dedupInvalidate(table: usize, reverse: usize, base: u32, pages: usize, count: u32): void {
  for (let i: u32 = 0; i < count; i++) dropHolder(table, reverse, base + load<u32>(pages + (<usize>i << 2)));
}
