// Found by the browser demo (issue 8): in hybrid mode a page dirtied during pre-copy but
// rewritten with the content already sent is pending at the post-copy switch; the encode
// pipeline skipped it as unchanged (no record), so the destination waited for it forever
// and failed with "post-copy ended with N pages still missing".
import { describe, expect, it } from "vitest";
import { createKernel, PAGE_SIZE } from "../../src/index.js";
import { MigrationDestination } from "../../src/engine/destination.js";
import { MigrationSource } from "../../src/engine/source.js";
import { WasmGuestMemory } from "../../src/memory/wasm-guest-memory.js";
import { createInProcessPair } from "../../src/transport/in-process.js";

describe("hybrid: pages dirtied with unchanged content before the post-copy switch", () => {
  for (const codecs of [{}, { unchanged: false }, { unchanged: false, zero: false, dedup: false, rle: false }]) {
    it(`are still delivered (codecs ${JSON.stringify(codecs)})`, async () => {
      const ks = await createKernel();
      const kd = await createKernel();
      const pages = 256;
      const src = new WasmGuestMemory(ks, pages);
      const bytes = src.bytes();
      for (let p = 0; p < pages; p++) bytes[p * PAGE_SIZE + (p % 97)] = 1 + (p % 200);
      const dst = new WasmGuestMemory(kd, pages);
      const [ta, tb] = createInProcessPair();
      // the guest's last act before the pause: it rewrites pages 0..63 with their own
      // bytes (dirty, content unchanged), so they are pending at the post-copy switch
      const rewrite = () => {
        for (let p = 0; p < 64; p++) src.write(p * PAGE_SIZE, src.pageView(p).slice(0, 64));
      };
      const source = new MigrationSource({
        kernel: ks, memory: src, dirtyLog: src.dirtyLog(), transport: ta, mode: "hybrid", codecs,
        maxRounds: 2, onPause: rewrite,
      });
      const destination = new MigrationDestination({ kernel: kd, memory: dst, transport: tb });
      const [report, result] = await Promise.all([source.migrate(), destination.receive()]);
      expect(result.committed).toBe(true);
      expect(report.rounds.at(-1)!.phase).toBe("postcopy");
      expect(report.rounds.at(-1)!.dirtied).toBeGreaterThanOrEqual(64);
      expect(Buffer.compare(dst.bytes(), src.bytes())).toBe(0);
    });
  }
});
