import { describe, expect, it } from "vitest";
import { createKernel, DirtyBitmap } from "../../src/index.js";
import { pushPostcopyPages } from "../../src/engine/postcopy-push.js";

describe("post-copy push", () => {
  it("sends requested pages first, pre-pages after the fault, and every pending page exactly once", async () => {
    const k = await createKernel();
    const pending = new DirtyBitmap(k, 1000);
    pending.setRange(0, 1000);
    pending.clear(500); // already at the destination
    const requests = [700, 500, 701, 3];
    const sent: number[][] = [];
    const result = await pushPostcopyPages({
      pending,
      prepagePages: 8,
      nextRequest: () => (sent.length >= 1 ? requests.shift() : undefined), // requests arrive after the first chunk
      sendPages: async (pages) => void sent.push(Array.from(pages)),
      checkRemote: () => {},
      yieldToRequests: async () => {},
    });
    expect(sent[0]).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(sent.slice(1, 3)).toEqual([[700], [701]]); // 500 is not pending, 3 was already pushed
    expect(sent[3]).toEqual([702, 703, 704, 705, 706, 707, 708, 709]); // pre-paging after the last fault
    const all = sent.flat().sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 1000 }, (_, i) => i).filter((i) => i !== 500));
    expect(result).toEqual({ requested: 2, pushed: 997 });
    expect(pending.count()).toBe(0);
  });

  it("stops when the destination failed", async () => {
    const k = await createKernel();
    const pending = new DirtyBitmap(k, 10);
    pending.setRange(0, 10);
    await expect(
      pushPostcopyPages({
        pending,
        prepagePages: 4,
        nextRequest: () => undefined,
        sendPages: async () => {},
        checkRemote: () => {
          throw new Error("gone");
        },
        yieldToRequests: async () => {},
      }),
    ).rejects.toThrow("gone");
  });
});
