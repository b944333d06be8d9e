// The destination's page applier for guest RAM in kernel memory: one call applies the
// records of a PAGES payload (grammar in src/wire/page-record.ts), each in one pass, and
// hashes every page it writes into the whole-memory digest's table, so the digest is
// kept as pages arrive instead of by a pass over memory at the end.
//
//   for each record, in order:
//     check the header exactly as readPageRecords does, before touching a page:
//       header inside the payload, kind known, page < page count, body inside the
//       payload, length allowed for the kind
//     ZERO    write zeros unless the page is already zero: known from the digest table
//             (not read), else checked (a fresh page stays unmapped)
//     RAW     copy the body
//     XBZRLE  decode in place (the whole input is validated first: a rejected one leaves
//     RLE       the page as it was; nothing is written outside the page)
//     LZ
//     DEDUP   copy a page of this memory (guest 0); another guest's page: stop, the
//             caller applies that record and calls again from the next one
//     XXH3-128(digest seed) of the page written → table[page], its bit set in the bitmap
//   after the last record: no bytes left over
//
// Context (APPLY_* offsets in abi.ts): guest RAM and its page count, the digest table
// (16 bytes per page; 0: no digest), the bitmap of pages hashed, the seed; the record to
// start at (offset, index), and where the call stopped. A failure returns a negative code
// with the failing record's offset and index in the context: records before it are
// applied, it and the ones after are not.
import {
  APPLY_BODY_TRUNCATED, APPLY_DEDUP_RANGE, APPLY_DIGEST_BITS, APPLY_DIGEST_TABLE, APPLY_DONE, APPLY_FOREIGN_DEDUP,
  APPLY_HEADER_TRUNCATED, APPLY_INDEX, APPLY_KIND_UNKNOWN, APPLY_LENGTH, APPLY_LZ_CORRUPT, APPLY_OFFSET, APPLY_PAGE_COUNT,
  APPLY_PAGE_RANGE, APPLY_PAYLOAD_SHORT, APPLY_RAM, APPLY_RLE_CORRUPT, APPLY_SEED_HI, APPLY_SEED_LO,
  APPLY_TRAILING_BYTES, APPLY_UNWRITTEN, APPLY_XBZRLE_CORRUPT, DEDUP_RECORD_BYTES, PAGE_SIZE, PAGES_HEADER_BYTES,
  RECORD_DEDUP, RECORD_HEADER_BYTES, RECORD_LZ, RECORD_RAW, RECORD_RLE, RECORD_XBZRLE, RECORD_ZERO,
} from "./abi";
import { pageIsZero } from "./dirty-bitmap";
import { lzDecode } from "./lz";
import { hashPage128, scratchZeroHash, secretFor, zeroPageHash128 } from "./pagehash";
import { rleDecode } from "./rle";
import { xbzrleDecode } from "./xbzrle";

/** True when a body of `length` bytes is allowed for `kind` (readPageRecords' checkLength). */
@inline function lengthAllowed(kind: u32, length: u32): bool {
  if (kind == RECORD_ZERO) return length == 0;
  if (kind == RECORD_RAW) return length == <u32>PAGE_SIZE;
  if (kind == RECORD_DEDUP) return length == <u32>DEDUP_RECORD_BYTES;
  return length != 0 && length <= <u32>PAGE_SIZE; // XBZRLE, RLE, LZ
}

/** True when the digest has hashed `page` and its entry is the zero page's hash (`zeroHash`). */
@inline function knownZero(table: usize, bits: usize, page: u32, zeroHash: usize): bool {
  if ((load<u32>(bits + (<usize>(page >> 5) << 2)) & (<u32>1 << (page & 31))) == 0) return false;
  const h = table + (<usize>page << 4);
  return load<u64>(h) == load<u64>(zeroHash) && load<u64>(h, 8) == load<u64>(zeroHash, 8);
}

@inline function stop(ctx: usize, code: i32, o: usize, i: u32, unwritten: u32): i32 {
  store<u32>(ctx + APPLY_OFFSET, <u32>o);
  store<u32>(ctx + APPLY_INDEX, i);
  store<u32>(ctx + APPLY_UNWRITTEN, unwritten);
  return code;
}

/**
 * Applies the records of the `len`-byte PAGES payload at `payload` to the guest RAM named
 * by the context, from the record at (APPLY_OFFSET, APPLY_INDEX); see the file comment.
 * Returns APPLY_DONE, APPLY_FOREIGN_DEDUP (stopped before that record) or a negative
 * APPLY_* code (stopped at the failing record). Cost per record: the header checks, the
 * write of the page (a zero check for ZERO), one XXH3-128 of the page when a digest is kept.
 */
export function applyPageRecords(ctx: usize, payload: usize, len: u32): i32 {
  let o = <usize>load<u32>(ctx + APPLY_OFFSET);
  let i = load<u32>(ctx + APPLY_INDEX);
  let unwritten: u32 = 0;
  if (len < <u32>PAGES_HEADER_BYTES) return stop(ctx, APPLY_PAYLOAD_SHORT, o, i, unwritten);
  const count = load<u32>(payload, 4);
  const end = <usize>len;
  const ram = <usize>load<u32>(ctx + APPLY_RAM);
  const pageCount = load<u32>(ctx + APPLY_PAGE_COUNT);
  const table = <usize>load<u32>(ctx + APPLY_DIGEST_TABLE);
  const bits = <usize>load<u32>(ctx + APPLY_DIGEST_BITS);
  const secret = table ? secretFor((<u64>load<u32>(ctx + APPLY_SEED_HI) << 32) | <u64>load<u32>(ctx + APPLY_SEED_LO)) : 0;
  let zeroHashed = false; // the zero page's hash, in the instance's scratch, from the first ZERO record on
  const ZERO_HASH = scratchZeroHash();
  for (; i < count; i++) {
    // the header, as readPageRecords checks it
    if (o + RECORD_HEADER_BYTES > end) return stop(ctx, APPLY_HEADER_TRUNCATED, o, i, unwritten);
    const rec = payload + o;
    const kind = <u32>load<u8>(rec);
    const length = <u32>load<u16>(rec, 2);
    const page = load<u32>(rec, 4);
    if (kind > RECORD_LZ) return stop(ctx, APPLY_KIND_UNKNOWN, o, i, unwritten);
    if (page >= pageCount) return stop(ctx, APPLY_PAGE_RANGE, o, i, unwritten);
    if (o + RECORD_HEADER_BYTES + <usize>length > end) return stop(ctx, APPLY_BODY_TRUNCATED, o, i, unwritten);
    if (!lengthAllowed(kind, length)) return stop(ctx, APPLY_LENGTH, o, i, unwritten);
    const body = rec + RECORD_HEADER_BYTES;
    const dst = ram + <usize>page * PAGE_SIZE;
    // the page
    let zero = false;
    if (kind == RECORD_ZERO) {
      if (table && !zeroHashed) {
        zeroPageHash128(secret, ZERO_HASH);
        zeroHashed = true;
      }
      // a page the digest table says holds zeros is not read: the table follows every page
      // this applier writes, and a zeroed memory starts with the zero page's hash everywhere
      // (on fresh memory a read alone costs a page fault, ~15 µs per page on a VM)
      if (table && knownZero(table, bits, page, ZERO_HASH)) unwritten++;
      else if (pageIsZero(dst)) unwritten++;
      else memory.fill(dst, 0, PAGE_SIZE);
      zero = true;
    } else if (kind == RECORD_RAW) {
      memory.copy(dst, body, PAGE_SIZE);
    } else if (kind == RECORD_XBZRLE) {
      if (xbzrleDecode(body, <i32>length, dst) < 0) return stop(ctx, APPLY_XBZRLE_CORRUPT, o, i, unwritten);
    } else if (kind == RECORD_RLE) {
      if (rleDecode(body, <i32>length, dst) < 0) return stop(ctx, APPLY_RLE_CORRUPT, o, i, unwritten);
    } else if (kind == RECORD_LZ) {
      if (lzDecode(body, <i32>length, dst) < 0) return stop(ctx, APPLY_LZ_CORRUPT, o, i, unwritten);
    } else {
      if (load<u16>(body) != 0) return stop(ctx, APPLY_FOREIGN_DEDUP, o, i, unwritten);
      const source = load<u32>(body, 4);
      if (source >= pageCount) return stop(ctx, APPLY_DEDUP_RANGE, o, i, unwritten);
      memory.copy(dst, ram + <usize>source * PAGE_SIZE, PAGE_SIZE);
    }
    // its hash
    if (table) {
      const h = table + (<usize>page << 4);
      if (zero) {
        if (!zeroHashed) {
          zeroPageHash128(secret, ZERO_HASH);
          zeroHashed = true;
        }
        store<u64>(h, load<u64>(ZERO_HASH));
        store<u64>(h, load<u64>(ZERO_HASH, 8), 8);
      } else hashPage128(dst, secret, h);
      const w = bits + (<usize>(page >> 5) << 2);
      store<u32>(w, load<u32>(w) | (<u32>1 << (page & 31)));
    }
    o += RECORD_HEADER_BYTES + <usize>length;
  }
  if (o != end) return stop(ctx, APPLY_TRAILING_BYTES, o, i, unwritten);
  return stop(ctx, APPLY_DONE, o, i, unwritten);
}
