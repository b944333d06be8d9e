// History kernel: recordRound over a 2^24-page (64 GiB guest) bitmap and reuse-distance
// updates, against memcpy of the bitmap bytes and a plain-JS Map + Fenwick tracker, in one
// process.  Run: npx tsx bench/history.bench.ts [--quick]
import { DirtyBitmap, loadKernel, PageHistory, type Kernel } from "../src/index.js";
import {
  mbps,
  printTable,
  printTargets,
  QUICK,
  round,
  target,
  time,
  timeMemcpy,
  verify,
  writeResults,
  type Target,
  type Timing,
  rng,
} from "./harness.js";

const BITMAP_PAGES = 1 << 24;
const DENSITIES = [0.01, 0.1];
const TRACE_WRITES = QUICK ? 1 << 18 : 1 << 20;
const HOT_PAGES = 1 << 16;

/**
 * The obvious JS reuse-distance tracker: a Map from page to its last stamp and a Fenwick
 * tree over stamps in a growing typed array (no compaction).
 */
class JsReuseTracker {
  last = new Map<number, number>();
  dist = new Map<number, number>();
  tree = new Uint32Array(1 << 16);
  next = 1;
  live = 0;
  write(p: number): void {
    const t = this.next++;
    if (t >= this.tree.length) {
      // grow: rebuild the tree from the live stamps
      const bigger = new Uint32Array(this.tree.length * 2);
      for (const s of this.last.values()) for (let i = s; i < bigger.length; i += i & -i) bigger[i]++;
      this.tree = bigger;
    }
    const s = this.last.get(p);
    if (s !== undefined) {
      let pre = 0;
      for (let i = s; i > 0; i &= i - 1) pre += this.tree[i];
      this.dist.set(p, this.live - pre);
      for (let i = s; i < this.tree.length; i += i & -i) this.tree[i]--;
    } else this.live++;
    for (let i = t; i < this.tree.length; i += i & -i) this.tree[i]++;
    this.last.set(p, t);
  }
}

interface Row {
  [k: string]: string | number;
}

/** A timed op over a bitmap of `bytes` with `pages` dirty pages (ns per dirty page, MB/s of bitmap). */
function row(op: string, d: string, pages: number, bytes: number, t: Timing, memcpy: Timing): Row {
  return {
    op,
    density: d,
    "dirty pages": pages,
    "ms/op": round(t.seconds * 1e3, 3),
    "ns/page": pages ? round((t.seconds / pages) * 1e9, 1) : "-",
    "Mpages/s": pages ? round(pages / t.seconds / 1e6, 2) : "-",
    "MB/s bitmap": mbps(bytes, t.seconds),
    "× memcpy": round(memcpy.seconds / t.seconds, 4),
  };
}

function recordRoundSuite(k: Kernel, rows: Row[], targets: Target[]): void {
  const bm = new DirtyBitmap(k, BITMAP_PAGES);
  const bytes = bm.byteLength;
  const memcpy = timeMemcpy(bytes);
  rows.push(row(`memcpy (${bytes} B of bitmap)`, "-", 0, bytes, memcpy, memcpy));
  const h = new PageHistory(k, BITMAP_PAGES);
  const plain = new PageHistory(k, BITMAP_PAGES, { reuseDistance: false });
  for (const density of DENSITIES) {
    const d = `${density * 100}%`;
    const r = rng(Math.round(density * 1e4));
    const words = bm.sharedWords();
    words.fill(0);
    let n = 0;
    for (let i = 0; i < BITMAP_PAGES; i++)
      if (r() < density) {
        words[i >>> 5] |= 1 << (i & 31);
        n++;
      }
    // verify: one round records n pages; the same set again gives every page distance n − 1
    verify(`recordRound ${d}`, h.recordRound(bm), n);
    h.recordRound(bm);
    const first = bm.nextSet(0);
    verify(`reuse distance ${d}`, h.reuseDistance(first), n - 1);
    verify(`recordRound without distances ${d}`, plain.recordRound(bm), n);
    const tRing = time(`recordRound (ring + counts) ${d}`, () => plain.recordRound(bm));
    const tFull = time(`recordRound (+ reuse distance) ${d}`, () => h.recordRound(bm));
    rows.push(row("recordRound ring+counts", d, n, bytes, tRing, memcpy));
    rows.push(row("recordRound +reuse distance", d, n, bytes, tFull, memcpy));
    targets.push(target(`recordRound ring+counts ${d}: ns per dirty page`, (tRing.seconds / n) * 1e9, "<=", 40, " ns"));
    targets.push(
      target(`recordRound +reuse distance ${d}: ns per dirty page`, (tFull.seconds / n) * 1e9, "<=", 500, " ns"),
    );
  }
  h.dispose();
  plain.dispose();
  bm.dispose();
}

function reuseSuite(k: Kernel, rows: Row[], targets: Target[]): void {
  // 70 % of writes on a hot set of 2^16 pages, the rest uniform over 2^24
  const r = rng(77);
  const trace = new Uint32Array(TRACE_WRITES);
  for (let i = 0; i < trace.length; i++)
    trace[i] = r() < 0.7 ? Math.floor(r() * HOT_PAGES) : Math.floor(r() * BITMAP_PAGES);
  const region = k.alloc(trace.byteLength, 64);
  k.u32(region).set(trace);
  // verify on the trace: kernel distances equal the JS tracker's
  const h = new PageHistory(k, BITMAP_PAGES);
  h.recordWrites(k.u32(region));
  const js = new JsReuseTracker();
  for (const p of trace) js.write(p);
  let checked = 0;
  for (const [p, dist] of js.dist) {
    if (checked++ > 2000) break;
    verify(`distance of page ${p}`, h.reuseDistance(p), dist);
  }
  const tKernel = time("recordWrites (kernel)", () => h.recordWrites(k.u32(region)));
  const tJs = time("plain-JS Map + Fenwick", () => {
    const t = new JsReuseTracker();
    for (let i = 0; i < trace.length; i++) t.write(trace[i]);
  });
  const per = (t: Timing) => round(trace.length / t.seconds / 1e6, 2);
  const ns = (t: Timing) => round((t.seconds / trace.length) * 1e9, 1);
  rows.push({
    op: "reuse distance: recordWrites",
    density: "trace",
    "dirty pages": trace.length,
    "ms/op": round(tKernel.seconds * 1e3, 2),
    "ns/page": ns(tKernel),
    "Mpages/s": per(tKernel),
    "MB/s bitmap": "-",
    "× memcpy": "-",
  });
  rows.push({
    op: "reuse distance: plain-JS Map",
    density: "trace",
    "dirty pages": trace.length,
    "ms/op": round(tJs.seconds * 1e3, 2),
    "ns/page": ns(tJs),
    "Mpages/s": per(tJs),
    "MB/s bitmap": "-",
    "× memcpy": "-",
  });
  targets.push(target("reuse distance updates: × plain-JS Map", tJs.seconds / tKernel.seconds, ">=", 2));
  h.dispose();
  k.free(region);
}

const k = await loadKernel({ shared: false });
const rows: Row[] = [];
const targets: Target[] = [];
recordRoundSuite(k, rows, targets);
reuseSuite(k, rows, targets);
printTable(rows);
printTargets(targets);
console.log(`wrote ${writeResults("history", rows, targets)}`);
