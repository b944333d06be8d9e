// Which data channel carries a page: pages are striped across channels by range, in
// stripes of STRIPE_PAGES (2 MiB, a huge page), stripe i on channel i mod n. A page
// always travels on the same channel, so its records arrive in order (XBZRLE deltas,
// dedup references within the channel's own pages) and each channel's XBZRLE cache,
// unchanged-filter and dedup index see only its own pages.

/** Pages per stripe. */
export const STRIPE_PAGES = 512;

/** The channel (0 … channels-1) that carries `page`. */
export function channelOfPage(page: number, channels: number): number {
  return Math.floor(page / STRIPE_PAGES) % channels;
}

/** The pages of `list` per channel, each in `list`'s order. */
export function splitByChannel(list: Uint32Array, channels: number): Uint32Array[] {
  const counts = new Uint32Array(channels);
  for (let i = 0; i < list.length; i++) counts[channelOfPage(list[i], channels)]++;
  const out = Array.from(counts, (n) => new Uint32Array(n));
  const at = new Uint32Array(channels);
  for (let i = 0; i < list.length; i++) {
    const c = channelOfPage(list[i], channels);
    out[c][at[c]++] = list[i];
  }
  return out;
}
