import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { applyDirtyPageRecord, loadRecording, parseDirtyPageRecords } from "../../src/memory/recording.js";

describe("real recordings (../shared/datasets)", () => {
  for (const name of ["idle", "redis", "dirtier"]) {
    it(`${name}: every rebuilt snapshot matches meta.json's sha256`, () => {
      const rec = loadRecording(name);
      expect(rec.deltas.length).toBe(rec.meta.k);
      const image = rec.base.slice();
      const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
      expect(sha(image)).toBe(rec.meta.snapshot_sha256[0]);
      rec.deltas.forEach((d, i) => {
        expect(d.interval).toBe(i + 1);
        expect(d.pages.length).toBe(rec.meta.intervals[i].n_dirty);
        applyDirtyPageRecord(image, d);
        expect(sha(image), `snapshot ${i + 1}`).toBe(rec.meta.snapshot_sha256[i + 1]);
      });
    });
  }

  it("rejects bad magic, truncation, unordered and out-of-range pages with RECORDING_CORRUPT", () => {
    const rec = new Uint8Array(32 + 8 + 2 * 4096);
    const v = new DataView(rec.buffer);
    rec.set([68, 80, 71, 49]); // DPG1
    v.setUint32(4, 1, true);
    v.setUint32(8, 2, true);
    v.setUint32(32, 3, true);
    v.setUint32(36, 5, true);
    expect(parseDirtyPageRecords(rec, 10)[0].pages).toEqual(new Uint32Array([3, 5]));
    const bad = (b: Uint8Array, pages = 10) =>
      expect(() => parseDirtyPageRecords(b, pages)).toThrowError(
        expect.objectContaining({ code: "RECORDING_CORRUPT" }),
      );
    bad(rec.subarray(0, rec.length - 1));
    bad(rec.subarray(0, 20));
    bad(rec, 5);
    const swapped = rec.slice();
    new DataView(swapped.buffer).setUint32(36, 2, true);
    bad(swapped);
    const magic = rec.slice();
    magic[0] = 0;
    bad(magic);
  });
});
