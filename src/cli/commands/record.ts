// pagewire record: record a RAM file into the DPG1 recording format (src/memory/trace.ts).
import { parseArgs } from "node:util";
import { loadKernel } from "../../kernel/loader.js";
import { recordMemory } from "../../workload/trace.js";
import { parseNumber } from "../units.js";
import { UsageError, type Command } from "../usage.js";

export const recordCommand: Command = {
  name: "record",
  summary: "record a guest's RAM file as a replayable trace (DPG1, as in ../shared/datasets)",
  help: `usage: pagewire record --memory FILE --interval MS --count N --out DIR [--json]

Reads FILE (a QEMU memory-backend-file, any memory image) now and then every MS
milliseconds N times; writes DIR/base.img.br (snapshot 0), DIR/deltas.dpg.br (one DPG1
record of changed pages per interval, found by an XXH3-128 scan) and DIR/meta.json
(snapshot sha256s, counts, times). Replay it with 'pagewire simulate --trace DIR'.
  --seed, --html are accepted for uniformity and ignored.`,
  async run(argv) {
    let v;
    try {
      v = parseArgs({
        args: argv,
        strict: true,
        allowPositionals: false,
        options: {
          memory: { type: "string" },
          interval: { type: "string" },
          count: { type: "string" },
          out: { type: "string" },
          json: { type: "boolean" },
          seed: { type: "string" },
          html: { type: "string" },
        },
      }).values;
    } catch (e) {
      throw new UsageError(`record: ${(e as Error).message.split("\n")[0]}`);
    }
    for (const k of ["memory", "interval", "count", "out"] as const)
      if (v[k] === undefined) throw new UsageError(`record: --${k} is required (see pagewire record --help)`);
    const intervalMs = parseNumber(v.interval!, "--interval", { min: 1 });
    const count = parseNumber(v.count!, "--count", { min: 1, integer: true });
    const summary = await recordMemory({
      memoryFile: v.memory!,
      intervalMs,
      count,
      outDir: v.out!,
      kernel: await loadKernel(),
      onInterval: (i, n) => {
        if (!v.json) console.error(`interval ${i}/${count}: ${n} dirty pages`);
      },
    });
    if (v.json) console.log(JSON.stringify(summary, null, 2));
    else
      console.log(
        `recorded ${summary.pageCount} pages, ${count} intervals of ${intervalMs} ms: ${summary.files.join(", ")}`,
      );
    return 0;
  },
};
