import { beforeAll, describe, expect, it } from "vitest";
import { loadKernel } from "../../src/index.js";
import { hashBytes64 } from "../../src/kernel/pagehash.js";
import {
  DEFAULT_MAX_PAYLOAD,
  frameChecksum,
  FrameReader,
  FrameWriter,
  FRAME_HEADER_BYTES,
  type FrameChecksum,
  type FrameKey,
} from "../../src/wire/frame.js";
import { frameKey } from "../../src/wire/hmac.js";
import { rng, randInt } from "../support/random.js";

const KEY = frameKey(new TextEncoder().encode("0123456789abcdef-secret"));
const OTHER = frameKey(new TextEncoder().encode("another-key-of-16+bytes"));
const code = (c: string) => expect.objectContaining({ code: c });

let check: FrameChecksum;
beforeAll(async () => {
  check = frameChecksum(await loadKernel());
});
const W = (key: FrameKey | null = null) => new FrameWriter(check, key);
const R = (key: FrameKey | null = null) => new FrameReader(check, key);

describe("frame checksum", () => {
  it("is the low 32 bits of XXH3-64 of header and payload", async () => {
    const k = await loadKernel();
    const f = W().seal(3, new Uint8Array([1, 2, 3]));
    const body = f.subarray(0, FRAME_HEADER_BYTES + 3);
    expect(new DataView(f.buffer).getUint32(body.length, true)).toBe(Number(hashBytes64(k, body) & 0xffffffffn));
  });
});

describe("frames", () => {
  for (const keyed of [false, true]) {
    const label = keyed ? "keyed" : "plain";
    const pair = () => [W(keyed ? KEY : null), R(keyed ? KEY : null)] as const;

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
        const frame = w.seal(
          3,
          new Uint8Array(300).map(() => randInt(rnd, 256)),
        );
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
    expect(() => R(OTHER).open(W(KEY).seal(1, new Uint8Array(8)))).toThrowError(code("FRAME_HMAC"));
    expect(() => R(KEY).open(W(null).seal(1, new Uint8Array(8)))).toThrowError(code("FRAME_KEY"));
    expect(() => R(null).open(W(KEY).seal(1, new Uint8Array(8)))).toThrowError(code("FRAME_KEY"));
  });

  it("keyed frames from another session (different nonce) do not verify", () => {
    const w = W(KEY);
    const r = R(KEY);
    w.setSessionNonce(new Uint8Array(32).fill(1));
    r.setSessionNonce(new Uint8Array(32).fill(2));
    expect(() => r.open(w.seal(3, new Uint8Array(8)))).toThrowError(code("FRAME_HMAC"));
  });
});
