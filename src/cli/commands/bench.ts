// pagewire bench: runs the kernel benchmarks (bench/*.bench.ts, with tsx) and prints their
// ratio tables. The suites live beside the package source, not in dist/: an installed
// package has none, and says so (BENCH_UNAVAILABLE) rather than failing on a missing file.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PagewireError } from "../../errors.js";
import { defineCommand } from "../command.js";
import { UsageError } from "../usage.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const NOT_HERE =
  "the benchmark suites (bench/*.bench.ts, run with tsx and the dev dependencies) are not part of the installed package; run them from a source checkout: npm install && npm run bench";

function suites(): string[] {
  const dir = join(ROOT, "bench");
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith(".bench.ts"))
        .map((f) => f.replace(/\.bench\.ts$/, ""))
        .sort()
    : [];
}

export const benchCommand = defineCommand({
  name: "bench",
  summary: "run the kernel benchmarks (ratios to memcpy) and print their tables",
  usage: "usage: pagewire bench [SUITE...] [--quick] [--json] [--list]",
  about: `Runs bench/<suite>.bench.ts with tsx (each writes bench/results/<suite>.json, or
<suite>.quick.tmp.json with --quick) and prints its table. Default: every suite.
Suites: ${suites().join(", ") || `none here: ${NOT_HERE}`}.`,
  positionals: true,
  flags: {
    quick: {},
    json: { help: "print the result files as one JSON object" },
    list: {},
    seed: { help: "accepted for uniformity and ignored", default: null },
    html: { help: "accepted for uniformity and ignored" },
  },
  async run(o, positionals) {
    const all = suites();
    if (all.length === 0)
      throw new PagewireError("BENCH_UNAVAILABLE", `bench: ${NOT_HERE} (no ${join(ROOT, "bench")})`);
    if (o.list) {
      console.log(all.join("\n"));
      return 0;
    }
    const chosen = positionals.length ? positionals : all;
    for (const s of chosen)
      if (!all.includes(s)) throw new UsageError(`bench: unknown suite '${s}' (${all.join(", ")})`);
    const tsx = join(ROOT, "node_modules", ".bin", "tsx");
    if (!existsSync(tsx))
      throw new PagewireError(
        "BENCH_UNAVAILABLE",
        `bench needs tsx (a dev dependency): ${tsx} not found; run npm install in ${ROOT}`,
      );
    const results: Record<string, unknown> = {};
    for (const s of chosen) {
      const r = spawnSync(tsx, [join("bench", `${s}.bench.ts`), ...(o.quick ? ["--quick"] : [])], {
        cwd: ROOT,
        stdio: o.json ? ["ignore", "ignore", "inherit"] : "inherit",
      });
      if (r.status !== 0) throw new Error(`benchmark ${s} failed (exit ${r.status ?? r.signal})`);
      const file = join(ROOT, "bench", "results", `${s}${o.quick ? ".quick.tmp" : ""}.json`);
      if (existsSync(file)) results[s] = JSON.parse(readFileSync(file, "utf8"));
    }
    if (o.json) console.log(JSON.stringify(results, null, 2));
    return 0;
  },
});
