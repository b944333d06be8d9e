// Page geometry shared by every kernel: guest pages are 4 KiB (x86 base pages, QEMU's
// TARGET_PAGE_SIZE for x86 targets).
export const PAGE_SIZE: usize = 4096;
export const PAGE_SHIFT: usize = 12;
