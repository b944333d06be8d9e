// CRC-32 (IEEE 802.3, the zlib/PNG polynomial 0xEDB88320) for frame checksums.
// On Node the native zlib.crc32 (hardware-assisted, ~6 GB/s here) is used; elsewhere a
// slicing-by-4 table version in JS. node:zlib is imported through a variable so browser
// bundles carry no Node-only import.

const TABLES = (() => {
  const t = new Uint32Array(4 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[i] = c >>> 0;
  }
  for (let i = 0; i < 256; i++) {
    for (let s = 1; s < 4; s++) t[s * 256 + i] = (t[(s - 1) * 256 + i] >>> 8) ^ t[t[(s - 1) * 256 + i] & 0xff];
  }
  return t;
})();

/** Portable CRC-32 of `data` (slicing-by-4). */
export function crc32Portable(data: Uint8Array, seed = 0): number {
  let c = ~seed >>> 0;
  let i = 0;
  const n = data.length;
  for (; i + 4 <= n; i += 4) {
    c ^= data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    c = TABLES[768 + (c & 0xff)] ^ TABLES[512 + ((c >>> 8) & 0xff)] ^ TABLES[256 + ((c >>> 16) & 0xff)] ^ TABLES[c >>> 24];
  }
  for (; i < n; i++) c = TABLES[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

let impl: (data: Uint8Array) => number = crc32Portable;
if (typeof process !== "undefined" && process.versions?.node) {
  try {
    const name = "node:zlib";
    const zlib = (await import(/* @vite-ignore */ name)) as { crc32?: (d: Uint8Array) => number };
    const native = zlib.crc32;
    if (typeof native === "function") impl = (d) => native(d) >>> 0;
  } catch {
    // keep the portable version
  }
}

/** CRC-32 of `data`. */
export function crc32(data: Uint8Array): number {
  return impl(data);
}
