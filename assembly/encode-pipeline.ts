// The source's encode pipeline for one batch of pages, in one call: each page is read
// once and every stage works on that copy while it is in cache.
//
//   for each page of the batch, in batch order:
//     copy the page (guest RAM by index, or a packed snapshot) into the RAW record slot at
//       the write cursor: that copy is the snapshot every later step reads
//     zero check; XXH3-128 (seeded; the zero page's hash is computed once per call)
//     unchanged since last sent (fake dirty)      → no record, cursor stays
//     zero                                         → ZERO record
//     dedup hit (lookup-and-record)                → DEDUP record
//     XBZRLE against the cache; RLE (candidates, budget); LZ (budget, below the best so
//       far) → the shortest, earlier on a tie; XBZRLE identical to the cached copy → no record
//     otherwise                                    → RAW (the slot already holds it)
//     a shorter record is written over the slot and the cursor moves past it only
//
// Rules (the TS side, src/codec/encode-pipeline.ts, states them for users):
// - with sendAll no page is skipped (unchanged or XBZRLE-identical) and no dedup reference
//   is sent; the filter and the dedup index still learn what each page now holds;
// - the dedup index learns every page's content in emission order (this loop's order);
// - the XBZRLE cache never keeps a copy that differs from the destination's page: zero and
//   dedup pages overwrite a cached copy; at the last stage (QEMU does not refresh the cache
//   then) a page that hit the cache and changed loses its entry;
// - XBZRLE runs only when the TS side sets ENCODE_FLAG_XBZRLE (from xbzrleFromRound on);
//   RLE only on candidates (rleCandidate) and within ENCODE_RLE_MAX bytes; LZ within
//   ENCODE_LZ_MAX bytes, only on candidates (lzCandidate: two equal 4-byte samples of 32) and only
//   when shorter than XBZRLE and RLE (its encoder gives up early on a page that will not fit).
//
// Context (ENCODE_* offsets in abi.ts, filled by the TS wrapper): flags, seed, page count,
// the filter's table (0: off), the dedup table (0: off), the XBZRLE cache (0: none), RLE
// and LZ budgets, ENCODE_SCRATCH_BYTES of scratch; out: the batch's counts and XBZRLE save counters.
//
// see: migration/ram.c (ram_save_target_page, save_zero_page, save_xbzrle_page,
//      xbzrle_cache_zero_page)
import {
  DEDUP_RECORD_BYTES, ENCODE_BAD_PAGE, ENCODE_CACHE_AGES, ENCODE_CACHE_DATA, ENCODE_CACHE_SLOTS, ENCODE_CACHE_TAGS,
  ENCODE_DEDUP_BASE, ENCODE_DEDUP_GUEST, ENCODE_DEDUP_MASK, ENCODE_DEDUP_REVERSE, ENCODE_DEDUP_TABLE, ENCODE_DEDUPS,
  ENCODE_FILTER_HASHES, ENCODE_FILTER_KNOWN, ENCODE_FLAG_LAST_STAGE, ENCODE_FLAG_LZ, ENCODE_FLAG_RLE, ENCODE_FLAG_SEND_ALL,
  ENCODE_FLAG_XBZRLE, ENCODE_FLAG_ZERO, ENCODE_FLAGS, ENCODE_GENERATION, ENCODE_LZ_MAX, ENCODE_LZS, ENCODE_PAGE_COUNT,
  ENCODE_RAWS,
  ENCODE_RLE_MAX, ENCODE_RLE_NEED, ENCODE_RLES, ENCODE_SCRATCH, ENCODE_SEED_HI, ENCODE_SEED_LO, ENCODE_SKIPPED,
  ENCODE_XBZRLE_STATS, ENCODE_XBZRLES, ENCODE_ZEROS, PAGE_SIZE, RECORD_DEDUP, RECORD_HEADER_BYTES, RECORD_LZ,
  RECORD_RAW, RECORD_RLE, RECORD_XBZRLE, RECORD_ZERO, SAVE_MISS_INSERTED, XBZRLE_STATS_SIZE,
} from "./abi";
import { dedupCount, dedupEntry, dedupStamp, dedupStep } from "./dedup-index";
import { pageIsZero } from "./dirty-bitmap";
import { lzCandidate, lzEncode } from "./lz";
import { recordSentPage, unchangedSinceSent } from "./fake-dirty";
import { hashPage128, scratchHash, scratchZeroHash, secretFor, zeroPageHash128 } from "./pagehash";
import { rleCandidate, rleEncode } from "./rle";
import { countSave, isCachedPage, saveCachedPage } from "./xbzrle-cache";

/** kind:u8 reserved:u8 length:u16 page:u32 in one store. */
@inline function storeHeader(rec: usize, kind: u32, length: u32, page: u32): void {
  store<u64>(rec, <u64>kind | (<u64>length << 16) | (<u64>page << 32));
}

@inline function bumpCount(ctx: usize, field: usize): void {
  store<u32>(ctx + field, load<u32>(ctx + field) + 1);
}

/** Makes a cached copy of page `idx`, if any, hold `from` (zeros when `from` is 0). */
@inline function overwriteCachedPage(tags: usize, data: usize, mask: u32, idx: u32, from: usize): void {
  if (!isCachedPage(tags, mask, idx)) return;
  const slot = data + <usize>(idx & mask) * PAGE_SIZE;
  if (from) memory.copy(slot, from, PAGE_SIZE);
  else memory.fill(slot, 0, PAGE_SIZE);
}

/**
 * Encodes `count` pages (u32 indices at `pages`) into page records written back to back at
 * `out`, which must have room for count × (8 + 4096) bytes. Each page is read from guest RAM
 * at ram + index × 4096 when `ram` is non-zero, else from the packed `snapshot` (page i at
 * snapshot + i × 4096). Updates the filter, the dedup index and the XBZRLE cache named by
 * the context, and sets its counts to this batch's. Returns the bytes written, or
 * ENCODE_BAD_PAGE (nothing done) when an index is ≥ the context's page count.
 * Cost per page: one 4 KiB copy, a zero check, one XXH3-128 of the copy (filter or dedup
 * on), one table probe each, the XBZRLE pass over the cached copy and the RLE pass when
 * they apply, and the copy of a shorter encoding over the slot.
 */
export function encodePageBatch(ctx: usize, ram: usize, pages: usize, count: u32, snapshot: usize, out: usize): i32 {
  const pageCount = load<u32>(ctx + ENCODE_PAGE_COUNT);
  for (let i: u32 = 0; i < count; i++) if (load<u32>(pages + (<usize>i << 2)) >= pageCount) return ENCODE_BAD_PAGE;
  memory.fill(ctx + ENCODE_SKIPPED, 0, ENCODE_XBZRLE_STATS + XBZRLE_STATS_SIZE - ENCODE_SKIPPED);
  store<u32>(ctx + ENCODE_LZS, 0);

  const flags = load<u32>(ctx + ENCODE_FLAGS);
  const zeroOn = (flags & ENCODE_FLAG_ZERO) != 0;
  const rleOn = (flags & ENCODE_FLAG_RLE) != 0;
  const lzOn = (flags & ENCODE_FLAG_LZ) != 0;
  const sendAll = (flags & ENCODE_FLAG_SEND_ALL) != 0;
  const lastStage = (flags & ENCODE_FLAG_LAST_STAGE) != 0;
  const filter = <usize>load<u32>(ctx + ENCODE_FILTER_HASHES);
  const known = <usize>load<u32>(ctx + ENCODE_FILTER_KNOWN);
  const table = <usize>load<u32>(ctx + ENCODE_DEDUP_TABLE);
  const bucketMask = load<u32>(ctx + ENCODE_DEDUP_MASK);
  const reverse = <usize>load<u32>(ctx + ENCODE_DEDUP_REVERSE);
  const guest = load<u32>(ctx + ENCODE_DEDUP_GUEST);
  const base = load<u32>(ctx + ENCODE_DEDUP_BASE);
  const tags = <usize>load<u32>(ctx + ENCODE_CACHE_TAGS);
  const ages = <usize>load<u32>(ctx + ENCODE_CACHE_AGES);
  const data = <usize>load<u32>(ctx + ENCODE_CACHE_DATA);
  const mask = load<u32>(ctx + ENCODE_CACHE_SLOTS) - 1;
  const xbzrleOn = tags != 0 && (flags & ENCODE_FLAG_XBZRLE) != 0;
  const generation = load<u32>(ctx + ENCODE_GENERATION);
  const rleMax = <i32>load<u32>(ctx + ENCODE_RLE_MAX);
  const rleNeed = load<u32>(ctx + ENCODE_RLE_NEED);
  const xout = <usize>load<u32>(ctx + ENCODE_SCRATCH);
  const rout = xout + PAGE_SIZE;
  const lout = rout + PAGE_SIZE;
  const lzTable = lout + PAGE_SIZE;
  const lzMax = <i32>load<u32>(ctx + ENCODE_LZ_MAX);
  const stats = ctx + ENCODE_XBZRLE_STATS;

  const hashing = filter != 0 || table != 0;
  let secret: usize = 0;
  // this page's hash and the zero page's: in the instance's scratch (instances share static data)
  const HASH = scratchHash();
  const ZERO_HASH = scratchZeroHash();
  if (hashing) {
    secret = secretFor((<u64>load<u32>(ctx + ENCODE_SEED_HI) << 32) | <u64>load<u32>(ctx + ENCODE_SEED_LO));
    zeroPageHash128(secret, ZERO_HASH);
  }
  let stamp: u32 = table ? dedupStamp(table) : 0;
  let hits: u32 = 0;
  let misses: u32 = 0;

  let o: usize = 0;
  for (let i: u32 = 0; i < count; i++) {
    const idx = load<u32>(pages + (<usize>i << 2));
    const rec = out + o;
    const body = rec + RECORD_HEADER_BYTES;
    // the one read of the page: into its RAW slot
    memory.copy(body, ram ? ram + <usize>idx * PAGE_SIZE : snapshot + <usize>i * PAGE_SIZE, PAGE_SIZE);
    const zero = pageIsZero(body);
    let lo: u64 = 0;
    let hi: u64 = 0;
    if (hashing) {
      const h = zero ? ZERO_HASH : HASH;
      if (!zero) hashPage128(body, secret, HASH);
      lo = load<u64>(h);
      hi = load<u64>(h, 8);
    }

    // unchanged since last sent: no record (sendAll: every page is sent, and recorded)
    if (filter) {
      if (!sendAll) {
        if (unchangedSinceSent(filter, known, idx, lo, hi)) {
          bumpCount(ctx, ENCODE_SKIPPED);
          continue;
        }
      } else recordSentPage(filter, known, idx, lo, hi);
    }

    if (zeroOn && zero) {
      storeHeader(rec, RECORD_ZERO, 0, idx);
      o += RECORD_HEADER_BYTES;
      bumpCount(ctx, ENCODE_ZEROS);
      if (tags) overwriteCachedPage(tags, data, mask, idx, 0);
      if (table) dedupStep(table, bucketMask, reverse, guest, base, idx, lo, hi, ++stamp);
      continue;
    }

    // dedup: the index learns what the page will hold; a hit is sent as a reference
    if (table) {
      const found = dedupStep(table, bucketMask, reverse, guest, base, idx, lo, hi, ++stamp);
      if (!sendAll) {
        if (found >= 0) {
          hits++;
          if (tags) overwriteCachedPage(tags, data, mask, idx, body); // before the slot is overwritten
          const e = dedupEntry(table, <u32>found);
          storeHeader(rec, RECORD_DEDUP, <u32>DEDUP_RECORD_BYTES, idx);
          store<u32>(body, load<u32>(e, 16) & 0xffff); // guest:u16 reserved:u16(0)
          store<u32>(body, load<u32>(e, 20), 4);
          o += RECORD_HEADER_BYTES + DEDUP_RECORD_BYTES;
          bumpCount(ctx, ENCODE_DEDUPS);
          continue;
        }
        misses++;
      }
    }

    // XBZRLE against the cache, RLE, LZ; the shortest wins, the earlier on a tie
    let xl: i32 = SAVE_MISS_INSERTED; // no delta
    if (xbzrleOn) {
      const hit = isCachedPage(tags, mask, idx);
      xl = saveCachedPage(tags, ages, data, mask, idx, body, generation, lastStage, xout);
      countSave(stats, xl);
      if (lastStage && hit && xl != 0) store<u32>(tags + (<usize>(idx & mask) << 2), 0); // the entry is stale now
    } else if (tags) overwriteCachedPage(tags, data, mask, idx, body);
    if (xl == 0 && !sendAll) {
      bumpCount(ctx, ENCODE_SKIPPED); // identical to the cached copy, which the destination holds
      continue;
    }
    let rl: i32 = -1;
    if (rleOn && rleCandidate(body, rleNeed)) {
      // only an encoding shorter than the delta can win: a smaller limit stops the encoder early
      const limit = xl > 0 ? min<i32>(rleMax, xl - 1) : rleMax;
      if (limit > 0) rl = rleEncode(body, rout, limit);
    }
    // LZ: only a shorter encoding than the best so far can win
    let ll: i32 = -1;
    if (lzOn) {
      let limit = lzMax;
      if (xl > 0) limit = min<i32>(limit, xl - 1);
      if (rl > 0) limit = min<i32>(limit, rl - 1);
      if (limit > 0 && lzCandidate(body, lzTable)) ll = lzEncode(body, lout, limit, lzTable);
    }
    if (ll > 0) {
      memory.copy(body, lout, <usize>ll);
      storeHeader(rec, RECORD_LZ, <u32>ll, idx);
      o += RECORD_HEADER_BYTES + <usize>ll;
      bumpCount(ctx, ENCODE_LZS);
    } else if (xl > 0 && rl < 0) {
      memory.copy(body, xout, <usize>xl);
      storeHeader(rec, RECORD_XBZRLE, <u32>xl, idx);
      o += RECORD_HEADER_BYTES + <usize>xl;
      bumpCount(ctx, ENCODE_XBZRLES);
    } else if (rl > 0) {
      memory.copy(body, rout, <usize>rl);
      storeHeader(rec, RECORD_RLE, <u32>rl, idx);
      o += RECORD_HEADER_BYTES + <usize>rl;
      bumpCount(ctx, ENCODE_RLES);
    } else {
      storeHeader(rec, RECORD_RAW, <u32>PAGE_SIZE, idx);
      o += RECORD_HEADER_BYTES + PAGE_SIZE;
      bumpCount(ctx, ENCODE_RAWS);
    }
  }
  if (table) dedupCount(table, hits, misses, stamp);
  assert(o <= <usize>count * (RECORD_HEADER_BYTES + PAGE_SIZE), "encodePageBatch wrote past the room of its batch");
  return <i32>o;
}
