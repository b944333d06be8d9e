import { describe, expect, it } from "vitest";
import { createKernel } from "../../src/index.js";
import { DirtyBitmap } from "../../src/kernel/dirty-bitmap.js";
import { WasmGuestMemory } from "../../src/memory/wasm-guest-memory.js";
import type { GuestAccess } from "../../src/sim/destination-guest.js";
import { FakeDirtyReplay } from "../../src/sim/fake-dirty-replay.js";
import type { GuestWriter, Workload } from "../../src/workload/workload.js";

const PAGE = 4096;
const N = 4096;

/** Boots with pages 0..N/2 non-zero (the rest zero); each second writes whole pages 0..99 with a new byte. */
function hundredPages(): Workload {
  let t = 0;
  let v = 1;
  return {
    name: "hundred",
    init(m: GuestWriter) {
      const b = new Uint8Array(PAGE).fill(7);
      for (let p = 0; p < N / 2; p++) m.write(p * PAGE, b);
    },
    run(s, m) {
      t += s;
      while (t >= 1) {
        t -= 1;
        v++;
        for (let p = 0; p < 100; p++) m.write(p * PAGE, new Uint8Array(PAGE).fill(v));
      }
    },
  };
}

/** The simulator's source guest: rewrite puts the page's own bytes back (the dirty log sees it). */
const guestOf = (mem: WasmGuestMemory): GuestAccess => ({
  pageCount: mem.pageCount,
  write: (o, d) => mem.write(o, d),
  rewrite: (p) => mem.write(p * PAGE, mem.pageView(p).slice()),
});

describe("fake-dirty replay", () => {
  it("share f of the dirtied pages are identical rewrites of fixed partner pages, all non-zero at boot; memory is unchanged by them", async () => {
    const k = await createKernel();
    const plain = new WasmGuestMemory(k, N);
    const faked = new WasmGuestMemory(k, N);
    const w = new FakeDirtyReplay(hundredPages(), { share: 0.6, seed: 3 });
    hundredPages().init(guestOf(plain));
    w.init(guestOf(faked));
    const bits = new DirtyBitmap(k, N);
    const distinct: number[] = [];
    const ref = hundredPages();
    ref.init({ pageCount: N, write: () => {} });
    for (let second = 0; second < 3; second++) {
      faked.dirty.clearAll();
      w.run(1, guestOf(faked));
      ref.run(1, guestOf(plain));
      faked.dirty.harvest(bits);
      const dirty = Array.from(bits.collect());
      distinct.push(dirty.length);
      const fake = dirty.filter((p) => p >= 100);
      // partners come from the pages non-zero at boot
      expect(fake.every((p) => p < N / 2)).toBe(true);
      // m = 0.6 / 0.4 = 1.5 partners per real page, fixed: the same set every second
      expect(fake.length / dirty.length).toBeGreaterThan(0.6 - 0.06);
      expect(fake.length / dirty.length).toBeLessThan(0.6 + 0.06);
    }
    expect(new Set(distinct).size).toBe(1);
    expect(w.rewrites).toBeGreaterThan(0);
    // the rewrites changed no byte
    expect(Buffer.compare(plain.bytes(), faked.bytes())).toBe(0);
    bits.dispose();
    plain.dispose();
    faked.dispose();
  });

  it("share 0 adds nothing; a share outside [0, 1) is refused with WORKLOAD_OPTION", () => {
    const w = new FakeDirtyReplay(hundredPages(), { share: 0 });
    w.init({ pageCount: N, write: () => {} });
    expect(w.partners(5)).toEqual([]);
    expect(() => new FakeDirtyReplay(hundredPages(), { share: 1 })).toThrow(
      expect.objectContaining({ code: "WORKLOAD_OPTION" }),
    );
    expect(() => new FakeDirtyReplay(hundredPages(), { share: -0.1 })).toThrow(
      expect.objectContaining({ code: "WORKLOAD_OPTION" }),
    );
  });
});
