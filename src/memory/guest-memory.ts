import type { DirtyBitmap } from "../kernel/dirty-bitmap.js";

/**
 * Guest RAM as the engine sees it: a number of 4 KiB pages that can be read in batches
 * and written one page at a time. Source and destination memories implement the same
 * interface, so any memory can be migrated into any other.
 */
export interface GuestMemory {
  readonly pageCount: number;
  /**
   * Copies the listed pages, in order, into `out` (pages.length × 4096 bytes; a view of
   * kernel memory in the engine). A guest may be writing meanwhile: each page copy is
   * then some mix of old and new bytes, and the dirty log marks the page again.
   */
  readPages(pages: ArrayLike<number>, out: Uint8Array): void;
  /** Writes one whole page. */
  writePage(page: number, data: Uint8Array): void;
  /**
   * The page itself when it lives in kernel memory (zero-copy decode on the destination),
   * else null. Only valid until the next kernel allocation.
   */
  pageView(page: number): Uint8Array | null;
  /** Makes writes durable / visible (a file memory flushes); a no-op for RAM. */
  flush(): Promise<void>;
}

/**
 * A source of dirty pages: pages written since the last harvest. Start logging before
 * the first pass; each harvest returns what was written since the previous one.
 */
export interface DirtyLog {
  /**
   * Clears the log and starts tracking. `session.digestSeed` is the seed of the session's
   * whole-memory digest: a log that hashes pages (pageHashes) hashes with it when it can, so
   * the destination, which hashes each page it writes with that seed, needs no second pass.
   */
  start(session?: { digestSeed: bigint }): void;
  /** Moves the pages dirtied since the last harvest into `into` (replacing its content). */
  harvest(into: DirtyBitmap): void | Promise<void>;
  /** Stops tracking. */
  stop(): void;
  /**
   * A log that finds dirty pages by content (hash scan) must know what the destination
   * holds: the engine calls this with the pages it just read to send (`contents`: their
   * bytes, page after page), so the next harvest compares against them and not against
   * the previous scan. (A page read while changing — lock word set, later cleared — would
   * otherwise look clean at the next scan and the destination keep the transient copy.)
   */
  observe?(pages: ArrayLike<number>, contents: Uint8Array): void;
  /**
   * Copies the pages dirtied since the last harvest into `into` without clearing them (a
   * look at the live log: Xen's to_skip). Optional; cheap logs (bitmaps) offer it.
   */
  peek?(into: DirtyBitmap): void;
  /**
   * A log that hashes every page (hash scan) returns, right after a harvest, its per-page
   * XXH3-128 table (16 bytes per page, low then high) and seed: the hashes of memory as
   * that scan saw it. The engine derives the whole-memory digest from it instead of reading
   * the paused guest again. Null when the log holds no such table.
   */
  pageHashes?(): { seed: bigint; table: Uint8Array } | null;
}
