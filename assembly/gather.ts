// Page gather/scatter: copy a list of pages between guest memory and a packed batch
// buffer in one call (the engine snapshots the pages it encodes, as QEMU copies a page
// before XBZRLE-encoding it, so a guest writing meanwhile cannot tear the encoding).
import { GATHER_BAD_PAGE, PAGE_SIZE } from "./abi";

/** Copies pages[i] of `mem` to out + i × PAGE_SIZE for i < count; returns GATHER_BAD_PAGE if an index is ≥ pageCount (nothing copied past it). */
export function gatherPages(mem: usize, pageCount: u32, pages: usize, count: u32, out: usize): i32 {
  for (let i: u32 = 0; i < count; i++) {
    let p = unchecked(load<u32>(pages + (<usize>i << 2)));
    if (p >= pageCount) return GATHER_BAD_PAGE;
    memory.copy(out + <usize>i * PAGE_SIZE, mem + <usize>p * PAGE_SIZE, PAGE_SIZE);
  }
  return <i32>count;
}
