import { describe, expect, it } from "vitest";
import { createKernel, DirtyBitmap, loadKernel, PAGE_SIZE } from "../../src/index.js";

describe("loadKernel", () => {
  it("instantiates once and caches per memory kind", async () => {
    const a = await loadKernel();
    const b = await loadKernel();
    expect(a).toBe(b);
    expect(await loadKernel({ shared: false })).not.toBe(a.shared ? a : null);
    expect((await loadKernel({ shared: false })).shared).toBe(false);
  });

  it("shared kernels keep memory in a SharedArrayBuffer; private ones do not", async () => {
    const s = await createKernel({ shared: true });
    const p = await createKernel({ shared: false });
    expect(s.memory.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(p.memory.buffer).toBeInstanceOf(ArrayBuffer);
    expect(() => new DirtyBitmap(p, 10, { shared: true })).toThrowError(expect.objectContaining({ code: "SHARED_UNAVAILABLE" }));
  });

  it("separate instances have separate memories", async () => {
    const a = await createKernel();
    const b = await createKernel();
    const ra = a.alloc(PAGE_SIZE);
    const rb = b.alloc(PAGE_SIZE);
    a.bytes(ra).fill(1);
    b.bytes(rb).fill(0);
    expect(a.isZeroPage(a.bytes(ra))).toBe(false);
    expect(b.isZeroPage(b.bytes(rb))).toBe(true);
  });
});
