// What guest writes contain, so XBZRLE, RLE, zero-page and dedup see what they would see
// in a guest. Every generator is a pure function of (model, seed, version): the same
// write can be regenerated, which is how a fake-dirty write rewrites identical bytes.
import { seededRandom, randomInt } from "../util/random.js";

export const CONTENT_MODELS = ["zeros", "text", "pointers", "counters", "random", "mixed"] as const;
export type ContentModel = (typeof CONTENT_MODELS)[number];

const WORDS =
  "the of and to in is was for on that with as by at from kernel page memory buffer request key value user session error data index node cache thread socket worker timer".split(
    " ",
  );

/** Fills `out` with content of `model`; `version` is the write's sequence number for counters. */
export function fillContent(model: ContentModel, seed: number, version: number, out: Uint8Array): void {
  const r = seededRandom(seed);
  if (model === "mixed") {
    // a guest's writes: mostly small structures of pointers and counters, some text, some random
    const u = r();
    model = u < 0.1 ? "zeros" : u < 0.35 ? "text" : u < 0.6 ? "pointers" : u < 0.85 ? "counters" : "random";
  }
  switch (model) {
    case "zeros":
      out.fill(0);
      return;
    case "text": {
      let o = 0;
      while (o < out.length) {
        const w = WORDS[randomInt(r, WORDS.length)];
        for (let i = 0; i < w.length && o < out.length; i++) out[o++] = w.charCodeAt(i);
        if (o < out.length) out[o++] = randomInt(r, 12) === 0 ? 10 : 32;
      }
      return;
    }
    case "pointers": {
      // x86-64 kernel direct-map pointers: 0xffff8880_xxxxxxx0, some NULLs
      const base = 0x1000000 + randomInt(r, 0x3000000);
      for (let o = 0; o + 8 <= out.length; o += 8) {
        if (r() < 0.2) {
          out.fill(0, o, o + 8);
          continue;
        }
        const lo = (base + randomInt(r, 1 << 20) * 16) >>> 0;
        out[o] = lo & 0xf0;
        out[o + 1] = (lo >>> 8) & 0xff;
        out[o + 2] = (lo >>> 16) & 0xff;
        out[o + 3] = lo >>> 24;
        out[o + 4] = 0x80;
        out[o + 5] = 0x88;
        out[o + 6] = 0xff;
        out[o + 7] = 0xff;
      }
      for (let o = out.length & ~7; o < out.length; o++) out[o] = 0;
      return;
    }
    case "counters": {
      // u64 counters and timestamps that move by small steps
      const v = version * 8 + randomInt(r, 8);
      for (let o = 0; o + 8 <= out.length; o += 8) {
        const x = (v + (o >>> 3) * 3) >>> 0;
        out[o] = x & 0xff;
        out[o + 1] = (x >>> 8) & 0xff;
        out[o + 2] = (x >>> 16) & 0xff;
        out[o + 3] = x >>> 24;
        out[o + 4] = out[o + 5] = out[o + 6] = out[o + 7] = 0;
      }
      for (let o = out.length & ~7; o < out.length; o++) out[o] = 0;
      return;
    }
    case "random": {
      let o = 0;
      const words = out.length >>> 2;
      if (out.byteOffset % 4 === 0) {
        const w = new Uint32Array(out.buffer, out.byteOffset, words);
        for (let i = 0; i < words; i++) w[i] = (r() * 4294967296) >>> 0;
        o = words * 4;
      }
      for (; o < out.length; o++) out[o] = randomInt(r, 256);
      return;
    }
  }
}
