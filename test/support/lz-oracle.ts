// Plain-TS oracle of the LZ page codec (grammar at the top of assembly/lz.ts): a checker
// and a decoder written from the grammar, byte by byte, and a page generator for LZ
// material (text-like pages and pages repeating earlier stretches).
import { PAGE_SIZE } from "../../src/kernel/abi.js";
import { randInt } from "./random.js";

/** An ext at i: [value, bytes] or null when truncated or not canonical. */
function ext(src: Uint8Array, i: number, len: number): [number, number] | null {
  if (i >= len) return null;
  const b = src[i];
  if (b < 0x80) return [b, 1];
  if (i + 1 >= len) return null;
  const c = src[i + 1];
  if (c === 0 || c >= 0x80) return null;
  return [(b & 0x7f) | (c << 7), 2];
}

/** The decoded page, or null when the first `len` bytes of src are not a valid encoding. */
export function refLzDecode(src: Uint8Array, len = src.length): Uint8Array | null {
  const page = new Uint8Array(PAGE_SIZE);
  let i = 0;
  let d = 0;
  for (;;) {
    if (i >= len) return null;
    const t = src[i++];
    let lits = t >> 4;
    if (lits === 15) {
      const e = ext(src, i, len);
      if (!e) return null;
      lits += e[0];
      i += e[1];
    }
    if (d + lits > PAGE_SIZE || i + lits > len) return null;
    for (let x = 0; x < lits; x++) page[d++] = src[i++];
    if (d === PAGE_SIZE) return (t & 15) === 0 && i === len ? page : null;
    if (i + 2 > len) return null;
    const dist = src[i] | (src[i + 1] << 8);
    i += 2;
    if (dist === 0 || dist > d) return null;
    let m = (t & 15) + 4;
    if ((t & 15) === 15) {
      const e = ext(src, i, len);
      if (!e) return null;
      m += e[0];
      i += e[1];
    }
    if (d + m > PAGE_SIZE) return null;
    for (let x = 0; x < m; x++, d++) page[d] = page[d - dist];
    if (d === PAGE_SIZE) return i === len ? page : null;
  }
}

const WORDS = ["the", "page", "kernel", "migration", "dirty", "round", "struct", "return", "0x", "static", "int"];

/** Text-like content: words, spaces, newlines and digits, as in logs, source and configuration files. */
export function makeTextPage(r: () => number, page: Uint8Array): void {
  let x = 0;
  while (x < PAGE_SIZE) {
    const w = r() < 0.8 ? WORDS[randInt(r, WORDS.length)] : String(randInt(r, 100000));
    for (let c = 0; c < w.length && x < PAGE_SIZE; c++) page[x++] = w.charCodeAt(c);
    if (x < PAGE_SIZE) page[x++] = r() < 0.1 ? 10 : 32;
  }
}

/** Stretches copied from earlier in the page (near and far, short and long, overlapping) between random bytes. */
export function makeRepeatPage(r: () => number, page: Uint8Array): void {
  let x = 0;
  while (x < PAGE_SIZE) {
    const len = Math.min(PAGE_SIZE - x, 1 + randInt(r, r() < 0.5 ? 24 : 600));
    if (x > 0 && r() < 0.6) {
      const dist = 1 + randInt(r, Math.min(x, r() < 0.5 ? 16 : PAGE_SIZE));
      for (let t = 0; t < len; t++, x++) page[x] = page[x - dist];
    } else for (let t = 0; t < len; t++) page[x++] = randInt(r, 256);
  }
}
