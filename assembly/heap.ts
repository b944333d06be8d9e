// Memory layout facts the TS allocator needs: kernels allocate nothing, the TS heap
// hands out regions above the static data.

/** First byte after the module's static data; the TS heap starts here. */
export function heapBase(): usize {
  return __heap_base;
}
