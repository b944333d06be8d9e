// Seeded page-pair generators for the XBZRLE tests, fuzzing and benchmarks.
import { randInt } from "./random.js";
import { PAGE_SIZE } from "../../src/kernel/abi.js";

/** Fills `page` with random bytes (4 at a time). */
export function fillRandom(r: () => number, page: Uint8Array): void {
  const w = new Uint32Array(page.buffer, page.byteOffset, page.byteLength >>> 2);
  for (let i = 0; i < w.length; i++) w[i] = (r() * 4294967296) >>> 0;
}

/** A byte different from b. */
function other(r: () => number, b: number): number {
  return (b + 1 + randInt(r, 255)) & 0xff;
}

export const PAIR_KINDS = [
  "identical",
  "few-bytes",
  "density",
  "runs",
  "random",
  "near-limit",
  "zero-old",
  "edges",
] as const;

/**
 * Writes a random old page and a new page derived from it (kind chosen by the rng):
 * identical, a few changed bytes, a random density of changes, some runs, a fresh random
 * page, patterns whose encoding lands near 4096 bytes, a zero old page, changes at the
 * page edges.
 */
export function makePair(r: () => number, oldPage: Uint8Array, newPage: Uint8Array): string {
  const kind = PAIR_KINDS[randInt(r, PAIR_KINDS.length)];
  if (kind === "zero-old") oldPage.fill(0);
  else if (r() < 0.3) oldPage.fill(randInt(r, 256));
  else fillRandom(r, oldPage);
  newPage.set(oldPage);
  switch (kind) {
    case "identical":
      break;
    case "few-bytes": {
      const n = 1 + randInt(r, 64);
      for (let t = 0; t < n; t++) {
        const x = randInt(r, PAGE_SIZE);
        newPage[x] = other(r, oldPage[x]);
      }
      break;
    }
    case "density": {
      const p = [0.01, 0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99][randInt(r, 8)];
      for (let x = 0; x < PAGE_SIZE; x++) if (r() < p) newPage[x] = randInt(r, 256); // may equal old
      break;
    }
    case "runs": {
      const n = 1 + randInt(r, 12);
      for (let t = 0; t < n; t++) {
        const len = 1 + randInt(r, r() < 0.5 ? 40 : 600);
        const at = randInt(r, PAGE_SIZE);
        for (let x = at; x < Math.min(PAGE_SIZE, at + len); x++) newPage[x] = other(r, oldPage[x]);
      }
      break;
    }
    case "random":
      fillRandom(r, newPage);
      break;
    case "near-limit": {
      // blocks of `diff` differing bytes separated by `same` equal bytes: about
      // (diff + 2) / (diff + same) bytes per page byte, tuned around 4096 in total
      const diff = 20 + randInt(r, 200);
      const same = 1 + randInt(r, 3);
      const start = randInt(r, 8);
      const stop = PAGE_SIZE - randInt(r, 200);
      for (let x = start; x < stop; x++) if ((x - start) % (diff + same) < diff) newPage[x] = other(r, oldPage[x]);
      break;
    }
    case "edges": {
      if (r() < 0.7) newPage[0] = other(r, oldPage[0]);
      if (r() < 0.7) newPage[PAGE_SIZE - 1] = other(r, oldPage[PAGE_SIZE - 1]);
      const n = randInt(r, 4);
      for (let t = 0; t < n; t++) {
        const x = randInt(r, 32);
        newPage[x] = other(r, oldPage[x]);
        newPage[PAGE_SIZE - 1 - x] = other(r, oldPage[PAGE_SIZE - 1 - x]);
      }
      break;
    }
  }
  return kind;
}

/** A page made of runs of repeated bytes and short literal stretches (RLE material). */
export function makeRunPage(r: () => number, page: Uint8Array): void {
  let x = 0;
  const values = [0, 0xcc, 0xff, randInt(r, 256)];
  while (x < PAGE_SIZE) {
    const len = Math.min(PAGE_SIZE - x, r() < 0.5 ? 1 + randInt(r, 12) : 1 + randInt(r, 400));
    if (r() < 0.6) page.fill(values[randInt(r, values.length)], x, x + len);
    else for (let t = x; t < x + len; t++) page[t] = randInt(r, r() < 0.5 ? 4 : 256);
    x += len;
  }
}
