// pagewire record: record a RAM file into the DPG1 recording format (src/memory/trace.ts).
import { loadKernel } from "../../kernel/loader.js";
import { recordMemory } from "../../workload/trace.js";
import { defineCommand } from "../command.js";
import { UsageError } from "../usage.js";

export const recordCommand = defineCommand({
  name: "record",
  summary: "record a guest's RAM file as a replayable trace (DPG1, as in ../shared/datasets)",
  usage: "usage: pagewire record --memory FILE --interval DURATION --count N --out DIR [--json]",
  about: `Reads FILE (a QEMU memory-backend-file, any memory image) now and then every --interval
--count times; writes DIR/base.img.br (snapshot 0), DIR/deltas.dpg.br (one DPG1
record of changed pages per interval, found by an XXH3-128 scan) and DIR/meta.json
(snapshot sha256s, counts, times). Replay it with 'pagewire simulate --trace DIR'.`,
  flags: {
    memory: { help: "the RAM file to record (a QEMU memory-backend-file, any memory image)" },
    interval: {},
    count: {},
    out: { arg: "DIR", help: "the recording's directory" },
    json: { help: "print the summary as JSON" },
    seed: { help: "accepted for uniformity and ignored", default: null },
    html: { help: "accepted for uniformity and ignored" },
  },
  async run(o) {
    if (o.memory === undefined || o.interval === undefined || o.count === undefined || o.out === undefined) {
      const missing = (["memory", "interval", "count", "out"] as const).find((k) => o[k] === undefined);
      throw new UsageError(`record: --${missing} is required (see pagewire record --help)`);
    }
    const intervalMs = o.interval * 1000;
    if (!(intervalMs >= 1)) throw new UsageError(`record: --interval must be at least 1ms`);
    const count = o.count;
    const summary = await recordMemory({
      memoryFile: o.memory,
      intervalMs,
      count,
      outDir: o.out,
      kernel: await loadKernel(),
      onInterval: (i, n, seconds) => {
        if (!o.json) console.error(`interval ${i}/${count}: ${n} dirty pages in ${Math.round(seconds * 1000)} ms`);
      },
    });
    if (o.json) console.log(JSON.stringify(summary, null, 2));
    else
      console.log(
        `recorded ${summary.pageCount} pages, ${count} intervals of ${intervalMs} ms asked, ${measuredIntervals(summary.intervals)}: ${summary.files.join(", ")}`,
      );
    return 0;
  },
});

/** "measured 201–210 ms (mean 203 ms)": what the intervals really were (reading the file takes time). */
function measuredIntervals(intervals: { run_s: number }[]): string {
  const ms = intervals.map((x) => x.run_s * 1000);
  const mean = ms.reduce((a, b) => a + b, 0) / ms.length;
  return `measured ${Math.round(Math.min(...ms))}–${Math.round(Math.max(...ms))} ms (mean ${Math.round(mean)} ms)`;
}
