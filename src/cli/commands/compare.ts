// pagewire compare: a matrix of engine configurations × guests × bandwidths, each run in
// virtual time; a table, --json, --html with a chart per metric.
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { PAGE_SIZE } from "../../kernel/kernel.js";
import { runScenario } from "../../sim/simulator.js";
import { withFakeDirty } from "../../sim/fake-dirty-replay.js";
import { traceFakeDirty } from "./simulate.js";
import { barChart, esc, lineChart, page, table } from "../html-report.js";
import { ProgressBar } from "../progress.js";
import {
  guestFor,
  makeConfig,
  presetFor,
  runOptions,
  SCENARIO_HELP,
  SCENARIO_OPTIONS,
  type Config,
  type Guest,
} from "../scenario.js";
import { formatRate, parseRate, parseSize } from "../units.js";
import { UsageError, type Command } from "../usage.js";

const list = (s: string | undefined): string[] | undefined =>
  s === undefined
    ? undefined
    : s
        .split(",")
        .map((x) => x.trim())
        .filter(Boolean);

export interface CompareRow {
  guest: string;
  bandwidth: number;
  config: string;
  status: string;
  "total-time-ms": number;
  "downtime-ms": number;
  rounds: number;
  "mib-sent": number;
  verified: boolean;
  /** The guest's view (sim/guest-progress.ts): pause to running on the destination, fault stalls, work done / elapsed. */
  "guest-downtime-ms": number;
  "fault-stall-ms": number;
  "guest-progress": number;
}

export const compareCommand: Command = {
  name: "compare",
  summary:
    "compare configurations × workloads/traces × bandwidths (default: qemu vs pagewire presets on the recordings)",
  help: `usage: pagewire compare [options]

Runs every combination in virtual time and prints one row per run. With no options:
the presets qemu, pagewire, pagewire-history, pagewire-dpdt on the idle, redis and dirtier
recordings at 10 and 100 MiB/s (the README fidelity table).

  --presets LIST         presets (default qemu,pagewire,pagewire-history,pagewire-dpdt)
  --selection LIST       selection policies to cross with the presets
  --termination LIST     termination policies to cross with the presets
  --codecs LIST;LIST     codec sets separated by ';' (e.g. "zero,xbzrle;all")
  --workloads LIST       synthetic workloads (guest size default 256MiB)
  --traces LIST          recordings (default idle,redis,dirtier when no --workloads)
  --bandwidths LIST      link bandwidths (default 10MiB/s,100MiB/s)
  (with traces, --fake-dirty SHARE adds identical rewrites: SHARE of the dirtied pages, 0..0.99)
${SCENARIO_HELP}`,
  async run(argv) {
    let parsed;
    try {
      parsed = parseArgs({
        args: argv,
        strict: true,
        allowPositionals: false,
        options: {
          ...SCENARIO_OPTIONS,
          presets: { type: "string" },
          selection: { type: "string" },
          termination: { type: "string" },
          codecs: { type: "string" },
          workloads: { type: "string" },
          traces: { type: "string" },
          bandwidths: { type: "string" },
        },
      });
    } catch (e) {
      throw new UsageError(`compare: ${(e as Error).message.split("\n")[0]}`);
    }
    const v = parsed.values as Record<string, string | boolean | undefined>;
    const run = runOptions(v);
    const presets = (
      list(v.presets as string | undefined) ?? ["qemu", "pagewire", "pagewire-history", "pagewire-dpdt"]
    ).map(presetFor);
    const selections = list(v.selection as string | undefined) ?? [undefined];
    const terminations = list(v.termination as string | undefined) ?? [undefined];
    const codecSets = v.codecs !== undefined ? (v.codecs as string).split(";") : [undefined];
    const xbzrleCache = v["xbzrle-cache"] ? parseSize(v["xbzrle-cache"] as string, "--xbzrle-cache") : undefined;
    const configs: Config[] = [];
    for (const p of presets)
      for (const s of selections)
        for (const t of terminations)
          for (const c of codecSets) {
            configs.push(makeConfig(p, { selection: s, termination: t, codecs: c, xbzrleCache }));
          }
    const guests: Guest[] = [];
    const workloads = list(v.workloads as string | undefined);
    const traces = list(v.traces as string | undefined) ?? (workloads ? [] : ["idle", "redis", "dirtier"]);
    for (const w of workloads ?? []) guests.push(guestFor(v, { workload: w }, 256 << 20));
    for (const t of traces) guests.push(guestFor(v, { trace: t }, 0));
    const bandwidths = (list(v.bandwidths as string | undefined) ?? ["10MiB/s", "100MiB/s"]).map((b) =>
      parseRate(b, "--bandwidths"),
    );
    const total = configs.length * guests.length * bandwidths.length;
    const bar = new ProgressBar(!v.json && Boolean(process.stderr.isTTY));
    const rows: CompareRow[] = [];
    const reports: Record<string, unknown>[] = []; // the full report of each run, for --json
    const seed = run.seed ?? 1;
    for (const g of guests)
      for (const bw of bandwidths)
        for (const c of configs) {
          bar.update(rows.length / total, `${rows.length + 1}/${total}: ${g.label} @ ${formatRate(bw)} ${c.label}`);
          const created = g.create(seed);
          const { pageCount } = created;
          const workload = withFakeDirty(created.workload, traceFakeDirty(v, g.kind), seed);
          const r = await runScenario({
            ...run,
            workload,
            pageCount,
            bandwidth: bw,
            codecs: c.codecs,
            policy: c.policy,
            downtimeLimitMs: run.downtimeLimitMs ?? c.downtimeLimitMs,
          });
          const rep = r.report;
          reports.push(rep.toJSON());
          rows.push({
            guest: `${g.label}${g.kind === "workload" ? ` (${(pageCount * PAGE_SIZE) / 2 ** 20} MiB)` : ""}`,
            bandwidth: bw,
            config: c.label,
            status: rep.status,
            "total-time-ms": Math.round(rep.totalTime * 10) / 10,
            "downtime-ms": Math.round(rep.downtime * 10) / 10,
            rounds: rep.rounds.length,
            "mib-sent": Math.round((rep.ram.transferred / 2 ** 20) * 10) / 10,
            verified: r.verified,
            "guest-downtime-ms": Math.round(r.guest.downtimeMs * 10) / 10,
            "fault-stall-ms": Math.round(r.guest.faultStallMs * 10) / 10,
            "guest-progress": Math.round(r.guest.progress * 1e4) / 1e4,
          });
        }
    bar.done();
    const head = ["guest", "bandwidth", "config", "total-time ms", "downtime ms", "rounds", "MiB sent", "verified"];
    const cells = rows.map((r) => [
      r.guest,
      formatRate(r.bandwidth),
      r.config,
      r["total-time-ms"].toFixed(1),
      r["downtime-ms"].toFixed(1),
      String(r.rounds),
      r["mib-sent"].toFixed(1),
      String(r.verified),
    ]);
    if (v.html) writeFileSync(v.html as string, compareHtml(rows, head, cells, configs, seed));
    if (v.json)
      console.log(
        JSON.stringify(
          {
            seed,
            cpu: run.cpu,
            configs: configs.map((c) => ({
              label: c.label,
              policy: c.policy,
              codecs: c.codecs,
              "downtime-limit-ms": c.downtimeLimitMs,
            })),
            rows,
            reports,
          },
          null,
          2,
        ),
      );
    else {
      const width = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
      console.log(head.map((h, i) => (i < 3 ? h.padEnd(width[i]) : h.padStart(width[i]))).join("  "));
      for (const c of cells)
        console.log(c.map((x, i) => (i < 3 ? x.padEnd(width[i]) : x.padStart(width[i]))).join("  "));
      console.log(`seed ${seed}; CPU ${run.cpu}; virtual time`);
      if (v.html) console.log(`HTML report: ${v.html}`);
    }
    const bad = rows.filter((r) => r.status !== "completed" || !r.verified);
    if (bad.length) {
      console.error(`pagewire: ${bad.length} of ${rows.length} runs failed or did not verify`);
      return 1;
    }
    return 0;
  },
};

function compareHtml(rows: CompareRow[], head: string[], cells: string[][], configs: Config[], seed: number): string {
  const cases = [...new Set(rows.map((r) => `${r.guest} @ ${formatRate(r.bandwidth)}`))];
  const series = (metric: keyof CompareRow) =>
    configs.map((c) => ({
      name: c.label,
      values: cases.map((k) =>
        Number(
          rows.find((r) => r.config === c.label && `${r.guest} @ ${formatRate(r.bandwidth)}` === k)?.[metric] ?? NaN,
        ),
      ),
    }));
  const charts = [
    barChart("MiB sent", cases, series("mib-sent"), "MiB"),
    barChart("Total time", cases, series("total-time-ms"), "ms"),
    barChart("Downtime", cases, series("downtime-ms"), "ms"),
    barChart("Rounds", cases, series("rounds"), "rounds"),
  ];
  const bws = [...new Set(rows.map((r) => r.bandwidth))].sort((a, b) => a - b);
  if (bws.length > 1) {
    for (const g of [...new Set(rows.map((r) => r.guest))]) {
      const lines = configs.map((c) => ({
        name: c.label,
        points: bws
          .map(
            (bw) =>
              [
                bw / 2 ** 20,
                rows.find((r) => r.guest === g && r.config === c.label && r.bandwidth === bw)?.["downtime-ms"] ?? NaN,
              ] as [number, number],
          )
          .filter((p) => Number.isFinite(p[1])),
      }));
      charts.push(lineChart(`Downtime vs bandwidth: ${g}`, lines, "bandwidth, MiB/s", "downtime, ms"));
    }
  }
  const cfg = table(
    ["config", "selection", "termination", "non-convergence", "codecs"],
    configs.map((c) => [
      c.label,
      c.policy.selection,
      c.policy.termination,
      c.policy.nonConvergence ?? "none",
      Object.entries(c.codecs)
        .filter(([, x]) => x === true)
        .map(([k]) => k)
        .join(", "),
    ]),
  );
  return page(
    "pagewire compare",
    `<p>seed ${esc(seed)}, virtual time</p>${cfg}<h2>Results</h2>${table(head, cells)}<h2>Charts</h2>${charts.join("\n")}`,
  );
}
