// Plain-TS reference XBZRLE and RLE codecs, written from the grammars at the top of
// assembly/xbzrle.ts and assembly/rle.ts one byte at a time: the oracles of the tests.
import { PAGE_SIZE } from "../../src/kernel/abi.js";

function putLength(out: number[], n: number): void {
  if (n < 0x80) out.push(n);
  else out.push((n & 0x7f) | 0x80, n >> 7);
}

/** QEMU's portable encoder, byte by byte: the encoding, 0 (identical) or -1 (overflow). */
export function refXbzrleEncode(oldPage: Uint8Array, newPage: Uint8Array, dlen = PAGE_SIZE): Uint8Array | 0 | -1 {
  const out: number[] = [];
  let i = 0;
  for (;;) {
    if (out.length + 2 > dlen) return -1;
    let j = i;
    while (j < PAGE_SIZE && oldPage[j] === newPage[j]) j++;
    if (j === PAGE_SIZE) return i === 0 ? 0 : Uint8Array.from(out);
    putLength(out, j - i);
    if (out.length + 2 > dlen) return -1;
    let k = j;
    while (k < PAGE_SIZE && oldPage[k] !== newPage[k]) k++;
    putLength(out, k - j);
    if (out.length + (k - j) > dlen) return -1;
    for (let x = j; x < k; x++) out.push(newPage[x]);
    if (k === PAGE_SIZE) return Uint8Array.from(out);
    i = k;
  }
}

/**
 * QEMU's decoder rules applied to a copy: returns [end offset, page] or -1. (QEMU would have
 * written earlier runs before rejecting; the kernel writes nothing then.)
 */
export function refXbzrleDecode(src: Uint8Array, page: Uint8Array): [number, Uint8Array] | -1 {
  const dst = page.slice();
  const slen = src.length;
  let i = 0,
    d = 0;
  const getLength = (): number => {
    const b = src[i];
    if (b < 0x80) {
      i += 1;
      return b;
    }
    const c = src[i + 1];
    if (c & 0x80) return -1;
    i += 2;
    return (b & 0x7f) | (c << 7);
  };
  while (i < slen) {
    if (slen - i < 2) return -1;
    const first = i === 0;
    const z = getLength();
    if (z < 0 || (!first && z === 0)) return -1;
    d += z;
    if (d > PAGE_SIZE) return -1;
    if (slen - i < 2) return -1;
    const n = getLength();
    if (n <= 0) return -1;
    if (d + n > PAGE_SIZE || i + n > slen) return -1;
    dst.set(src.subarray(i, i + n), d);
    d += n;
    i += n;
  }
  return [d, dst];
}

/** The RLE encoder's rule, byte by byte: the encoding or -1 when longer than dlen. */
export function refRleEncode(page: Uint8Array, dlen = PAGE_SIZE): Uint8Array | -1 {
  const out: number[] = [];
  const runAt = (x: number) => {
    if (x + 8 > PAGE_SIZE) return false;
    for (let t = 1; t < 8; t++) if (page[x + t] !== page[x]) return false;
    return true;
  };
  let i = 0;
  while (i < PAGE_SIZE) {
    if (runAt(i)) {
      let e = i + 1;
      while (e < PAGE_SIZE && page[e] === page[i]) e++;
      putLength(out, ((e - i) << 1) | 1);
      out.push(page[i]);
      i = e;
    } else {
      let e = i + 1;
      while (e < PAGE_SIZE && !runAt(e)) e++;
      putLength(out, (e - i) << 1);
      for (let x = i; x < e; x++) out.push(page[x]);
      i = e;
    }
    if (out.length > dlen) return -1;
  }
  return Uint8Array.from(out);
}

/** The RLE grammar's decoder: the page or -1. */
export function refRleDecode(src: Uint8Array): Uint8Array | -1 {
  const dst = new Uint8Array(PAGE_SIZE);
  let i = 0,
    d = 0;
  while (i < src.length) {
    if (d === PAGE_SIZE) return -1;
    let h = src[i];
    if (h >= 0x80) {
      if (i + 1 >= src.length) return -1;
      const c = src[i + 1];
      if (c === 0 || c & 0x80) return -1;
      h = (h & 0x7f) | (c << 7);
      i += 2;
    } else i += 1;
    const n = h >> 1;
    if (n === 0 || d + n > PAGE_SIZE) return -1;
    if (h & 1) {
      if (i >= src.length) return -1;
      dst.fill(src[i], d, d + n);
      i += 1;
    } else {
      if (i + n > src.length) return -1;
      dst.set(src.subarray(i, i + n), d);
      i += n;
    }
    d += n;
  }
  return d === PAGE_SIZE ? dst : -1;
}

/** QEMU's XBZRLE decoder rules without writing: the end offset or -1. */
export function refXbzrleCheck(src: Uint8Array, slen = src.length): number {
  let i = 0,
    d = 0;
  while (i < slen) {
    if (slen - i < 2) return -1;
    const first = i === 0;
    let z = src[i];
    if (z >= 0x80) {
      if (src[i + 1] & 0x80) return -1;
      z = (z & 0x7f) | (src[i + 1] << 7);
      i += 2;
    } else i += 1;
    if (!first && z === 0) return -1;
    d += z;
    if (d > PAGE_SIZE) return -1;
    if (slen - i < 2) return -1;
    let n = src[i];
    if (n >= 0x80) {
      if (src[i + 1] & 0x80) return -1;
      n = (n & 0x7f) | (src[i + 1] << 7);
      i += 2;
    } else i += 1;
    if (n === 0 || d + n > PAGE_SIZE || i + n > slen) return -1;
    d += n;
    i += n;
  }
  return d;
}

/** The RLE grammar's validity check without writing: true when `slen` bytes of src decode to a page. */
export function refRleCheck(src: Uint8Array, slen = src.length): boolean {
  let i = 0,
    d = 0;
  while (i < slen) {
    if (d === PAGE_SIZE) return false;
    let h = src[i];
    if (h >= 0x80) {
      if (i + 1 >= slen) return false;
      const c = src[i + 1];
      if (c === 0 || c & 0x80) return false;
      h = (h & 0x7f) | (c << 7);
      i += 2;
    } else i += 1;
    const n = h >> 1;
    if (n === 0 || d + n > PAGE_SIZE) return false;
    const data = h & 1 ? 1 : n;
    if (i + data > slen) return false;
    i += data;
    d += n;
  }
  return d === PAGE_SIZE;
}
