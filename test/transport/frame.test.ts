import { describe, expect, it } from "vitest";
import { crc32, crc32Portable } from "../../src/transport/crc32.js";
import { DEFAULT_MAX_PAYLOAD, FrameReader, FrameWriter, FRAME_HEADER_BYTES } from "../../src/transport/frame.js";
import { frameKey } from "../../src/transport/hmac.js";
import { rng, randInt } from "../support/random.js";

const KEY = frameKey(new TextEncoder().encode("0123456789abcdef-secret"));
const OTHER = frameKey(new TextEncoder().encode("another-key-of-16+bytes"));
const code = (c: string) => expect.objectContaining({ code: c });

describe("CRC-32", () => {
  it("matches the standard check value and the native version on random data", () => {
    expect(crc32Portable(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
    const r = rng(3);
    for (let t = 0; t < 50; t++) {
      const b = new Uint8Array(randInt(r, 5000)).map(() => randInt(r, 256));
      expect(crc32Portable(b)).toBe(crc32(b));
    }
  });
});

describe("frames", () => {
  for (const keyed of [false, true]) {
    const label = keyed ? "keyed" : "plain";
    const pair = () => [new FrameWriter(keyed ? KEY : null), new FrameReader(keyed ? KEY : null)] as const;

    it(`${label}: round trip, in order`, () => {
      const [w, r] = pair();
      for (let i = 0; i < 5; i++) {
        const payload = new Uint8Array(i * 1000).fill(i);
        const f = r.open(w.seal(3, payload));
        expect(f.type).toBe(3);
        expect(f.seq).toBe(i);
        expect(Array.from(f.payload)).toEqual(Array.from(payload));
      }
    });

    it(`${label}: any flipped byte is rejected`, () => {
      const rnd = rng(11);
      for (let t = 0; t < 200; t++) {
        const [w, r] = pair();
        const frame = w.seal(3, new Uint8Array(300).map(() => randInt(rnd, 256)));
        const at = randInt(rnd, frame.length);
        frame[at] ^= 1 << randInt(rnd, 8);
        expect(() => r.open(frame)).toThrowError(/./);
      }
    });

    it(`${label}: truncated, replayed, reordered, bad magic, bad version, oversized`, () => {
      const [w, r] = pair();
      const f0 = w.seal(3, new Uint8Array(100));
      const f1 = w.seal(3, new Uint8Array(100));
      expect(() => r.open(f0.subarray(0, f0.length - 1))).toThrowError(code("FRAME_TRUNCATED"));
      expect(() => r.open(f0.subarray(0, 10))).toThrowError(code("FRAME_TRUNCATED"));
      expect(() => r.open(f1)).toThrowError(code("FRAME_SEQUENCE"));
      r.open(f0);
      expect(() => r.open(f0)).toThrowError(code("FRAME_SEQUENCE"));
      r.open(f1);
      const bad = w.seal(3, new Uint8Array(4));
      const magic = bad.slice();
      magic[0] ^= 0xff;
      expect(() => r.open(magic)).toThrowError(code("FRAME_MAGIC"));
      const version = bad.slice();
      version[4] = 9;
      expect(() => r.open(version)).toThrowError(code("PROTOCOL_VERSION"));
      const big = bad.slice();
      new DataView(big.buffer).setUint32(12, DEFAULT_MAX_PAYLOAD + 1, true);
      expect(() => r.open(big)).toThrowError(code("FRAME_TOO_LARGE"));
      expect(FRAME_HEADER_BYTES).toBe(16);
    });
  }

  it("a wrong key, a missing key and an unexpected key are rejected", () => {
    expect(() => new FrameReader(OTHER).open(new FrameWriter(KEY).seal(1, new Uint8Array(8)))).toThrowError(code("FRAME_HMAC"));
    expect(() => new FrameReader(KEY).open(new FrameWriter(null).seal(1, new Uint8Array(8)))).toThrowError(code("FRAME_KEY"));
    expect(() => new FrameReader(null).open(new FrameWriter(KEY).seal(1, new Uint8Array(8)))).toThrowError(code("FRAME_KEY"));
  });

  it("keyed frames from another session (different nonce) do not verify", () => {
    const w = new FrameWriter(KEY);
    const r = new FrameReader(KEY);
    w.setSessionNonce(new Uint8Array(32).fill(1));
    r.setSessionNonce(new Uint8Array(32).fill(2));
    expect(() => r.open(w.seal(3, new Uint8Array(8)))).toThrowError(code("FRAME_HMAC"));
  });
});
