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
    expect(() => new DirtyBitmap(p, 10, { shared: true })).toThrowError(
      expect.objectContaining({ code: "SHARED_UNAVAILABLE" }),
    );
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

describe("kernel builds", () => {
  it("the kernel tests run against the debug build (PAGEWIRE_KERNEL=debug in vitest.config.ts)", async () => {
    expect(process.env.PAGEWIRE_KERNEL).toBe("debug");
    expect((await loadKernel()).build).toBe("debug");
    expect((await createKernel({ shared: false })).build).toBe("debug");
  });

  it("a kernel assertion traps with its message in the debug build and is compiled out of the release build", async () => {
    const debug = await createKernel({ build: "debug", shared: false });
    const release = await createKernel({ build: "release", shared: false });
    expect(release.build).toBe("release");
    const bits = debug.alloc(64, 64, true); // 8 zero words
    // words = 3 breaks the "whole 64-byte chunks" layout rule of assembly/dirty-bitmap.ts
    expect(() => debug.raw.bitmapCount(bits.ptr, 3)).toThrowError(
      expect.objectContaining({
        code: "KERNEL_ABORT",
        message: expect.stringMatching(/bitmap words not a multiple of 8 at assembly\/dirty-bitmap\.ts:\d+:\d+/),
      }),
    );
    expect(debug.raw.bitmapCount(bits.ptr, 8)).toBe(0);
    expect(release.raw.bitmapCount(release.alloc(64, 64, true).ptr, 3)).toBe(0);
  });

  it("PAGEWIRE_KERNEL names the build; an unknown name is an error", async () => {
    const saved = process.env.PAGEWIRE_KERNEL;
    try {
      process.env.PAGEWIRE_KERNEL = "release";
      expect((await createKernel({ shared: false })).build).toBe("release");
      process.env.PAGEWIRE_KERNEL = "fast";
      await expect(createKernel({ shared: false })).rejects.toMatchObject({ code: "KERNEL_BUILD" });
      await expect(loadKernel({ shared: false })).rejects.toMatchObject({ code: "KERNEL_BUILD" });
    } finally {
      process.env.PAGEWIRE_KERNEL = saved;
    }
  });
});
