// A regression the browser demo found: in hybrid mode a page dirtied during pre-copy but
// rewritten with the content already sent is pending at the post-copy switch; the encode
// pipeline skipped it as unchanged (no record), so the destination waited for it forever
// and failed with "post-copy ended with N pages still missing".
import { describe, expect, it } from "vitest";
import { PAGE_SIZE } from "../../src/index.js";
import { createMigrationPair } from "../support/migration-pair.js";

describe("hybrid: pages dirtied with unchanged content before the post-copy switch", () => {
  for (const codecs of [{}, { unchanged: false }, { unchanged: false, zero: false, dedup: false, rle: false }]) {
    it(`are still delivered (codecs ${JSON.stringify(codecs)})`, async () => {
      const pages = 256;
      // the guest's last act before the pause: it rewrites pages 0..63 with their own
      // bytes (dirty, content unchanged), so they are pending at the post-copy switch
      const rewrite = () => {
        for (let p = 0; p < 64; p++) pair.src.write(p * PAGE_SIZE, pair.src.pageView(p).slice(0, 64));
      };
      const pair = await createMigrationPair({
        pages,
        mode: "hybrid",
        codecs,
        source: { maxRounds: 2, onPause: rewrite },
      });
      const bytes = pair.src.bytes();
      for (let p = 0; p < pages; p++) bytes[p * PAGE_SIZE + (p % 97)] = 1 + (p % 200);
      const { report, result } = await pair.run();
      expect(result.committed).toBe(true);
      expect(report.rounds.at(-1)!.phase).toBe("postcopy");
      expect(report.rounds.at(-1)!.dirtied).toBeGreaterThanOrEqual(64);
      expect(Buffer.compare(pair.dst.bytes(), pair.src.bytes())).toBe(0);
    });
  }
});
