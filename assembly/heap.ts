// Memory layout facts the TS allocator needs: kernels allocate nothing, the TS heap
// hands out regions above the static data and the default hashing scratch.
import { HASH_SCRATCH_BYTES } from "./abi";

/**
 * First byte the TS heap may hand out: after the module's static data and the default
 * hashing scratch that follows it (pagehash.ts: the same (__heap_base + 15) & ~15; it has
 * no data segment, so instantiation never writes it).
 */
export function heapBase(): usize {
  return ((__heap_base + 15) & ~15) + HASH_SCRATCH_BYTES;
}
