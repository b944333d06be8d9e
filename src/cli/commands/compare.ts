// pagewire compare: a matrix of engine configurations × guests × bandwidths, each run in
// virtual time; a table, --json, --html with a chart per metric.
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { PAGE_SIZE } from "../../kernel/kernel.js";
import { runScenario } from "../../sim/simulator.js";
import { textTable, type TextColumn } from "../../util/text-table.js";
import { barChart } from "../chart/bar-chart.js";
import { lineChart } from "../chart/line-chart.js";
import { esc, keepUnits, page, table } from "../html-report.js";
import { ProgressBar } from "../progress.js";
import {
  guestFor,
  makeConfig,
  presetFor,
  GROUPS,
  PRESETS_HELP,
  runOptions,
  SCENARIO_FLAGS,
  type Config,
  type Guest,
} from "../scenario.js";
import { defineCommand } from "../command.js";
import { formatRate } from "../units.js";

export interface CompareRow {
  guest: string;
  bandwidth: number;
  config: string;
  status: string;
  /** What ended pre-copy (MigrationReport.stoppedBy). */
  "stopped-by": string;
  "downtime-limit-ms": number;
  "total-time-ms": number;
  "downtime-ms": number;
  rounds: number;
  "mib-sent": number;
  verified: boolean;
  /** The guest's view (sim/guest-progress.ts): pause to running on the destination, fault stalls, work done / elapsed. */
  "guest-downtime-ms": number;
  "fault-stall-ms": number;
  "guest-progress": number;
  /** Guest seconds run before the migration (the history the source started from), 0 for none. */
  "warmup-s": number;
}

const DEFAULT_PRESETS = "qemu,pagewire,pagewire-history,pagewire-dpdt";

export const compareCommand = defineCommand({
  name: "compare",
  summary:
    "compare configurations × workloads/traces × bandwidths (default: qemu vs pagewire presets on the recordings)",
  usage: "usage: pagewire compare [options]",
  about: `Runs every combination in virtual time and prints one row per run. With no options:
the presets ${DEFAULT_PRESETS.replaceAll(",", ", ")} on the idle, redis and dirtier
recordings at 10 and 100 MiB/s (the README fidelity table). The flags marked [,…] take a
comma list, crossed with each other.`,
  flags: {
    preset: { group: GROUPS.CONFIG, list: true, help: "presets", default: DEFAULT_PRESETS },
    selection: {
      group: GROUPS.CONFIG,
      list: true,
      help: "page-selection policies to cross with the presets",
      absent: "the preset's",
    },
    termination: {
      group: GROUPS.CONFIG,
      list: true,
      help: "termination policies to cross with the presets",
      absent: "the preset's",
    },
    codecs: {
      group: GROUPS.CONFIG,
      arg: "LIST[;…]",
      help: 'codec sets separated by ";", e.g. "zero,xbzrle;all"',
    },
    bandwidth: { group: GROUPS.ENGINE, list: true, help: "link bandwidths", default: "10MiB/s,100MiB/s" },
    workload: { group: GROUPS.GUEST, list: true, help: "synthetic workloads", default: null, absent: "none" },
    trace: { group: GROUPS.GUEST, list: true, help: "recordings", absent: "idle,redis,dirtier when no --workload" },
    ...SCENARIO_FLAGS,
    "guest-size": { group: GROUPS.GUEST, default: "256MiB" },
  },
  epilogue: PRESETS_HELP,
  async run(v) {
    const run = runOptions(v);
    const presets = v.preset.map(presetFor);
    const selections = v.selection ?? [undefined];
    const terminations = v.termination ?? [undefined];
    const codecSets = v.codecs !== undefined ? v.codecs.split(";") : [undefined];
    const xbzrleCache = v["xbzrle-cache"];
    const configs: Config[] = [];
    for (const p of presets)
      for (const s of selections)
        for (const t of terminations)
          for (const c of codecSets) {
            configs.push(makeConfig(p, { selection: s, termination: t, codecs: c, xbzrleCache }));
          }
    const guests: Guest[] = [];
    const workloads = v.workload;
    const traces = v.trace ?? (workloads ? [] : ["idle", "redis", "dirtier"]);
    for (const w of workloads ?? []) guests.push(guestFor(v, { workload: w }));
    for (const t of traces) guests.push(guestFor(v, { trace: t }));
    const bandwidths = v.bandwidth;
    const total = configs.length * guests.length * bandwidths.length;
    const bar = new ProgressBar(v.progress === "auto" && !v.json && Boolean(process.stderr.isTTY));
    const rows: CompareRow[] = [];
    const reports: Record<string, unknown>[] = []; // the full report of each run, for --json
    const seed = run.seed ?? 1;
    for (const g of guests)
      for (const bw of bandwidths)
        for (const c of configs) {
          bar.update(rows.length / total, `${rows.length + 1}/${total}: ${g.label} @ ${formatRate(bw)} ${c.label}`);
          const { workload, pageCount } = g.create(seed);
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
            "stopped-by": rep.stoppedBy,
            "downtime-limit-ms": run.downtimeLimitMs ?? c.downtimeLimitMs,
            "total-time-ms": Math.round(rep.totalTime * 10) / 10,
            "downtime-ms": Math.round(rep.downtime * 10) / 10,
            rounds: rep.rounds.length,
            "mib-sent": Math.round((rep.ram.transferred / 2 ** 20) * 10) / 10,
            verified: r.verified,
            "guest-downtime-ms": Math.round(r.guest.downtimeMs * 10) / 10,
            "fault-stall-ms": Math.round(r.guest.faultStallMs * 10) / 10,
            "guest-progress": Math.round(r.guest.progress * 1e4) / 1e4,
            "warmup-s": r.warmup?.seconds ?? 0,
          });
          if (v.progress === "json") {
            const row = rows.at(-1)!;
            process.stderr.write(`${JSON.stringify({ event: "run", index: rows.length, total, ...row })}\n`);
          }
        }
    bar.done();
    const columns: TextColumn[] = [
      { head: "guest", align: "left" },
      { head: "bandwidth", align: "left" },
      { head: "config", align: "left" },
      { head: "total-time", unit: "ms" },
      { head: "downtime", unit: "ms" },
      { head: "limit", unit: "ms" },
      { head: "stopped by", align: "left" },
      { head: "rounds" },
      { head: "sent", unit: "MiB" },
      { head: "verified", align: "left" },
    ];
    const cells = rows.map((r) => [
      r.guest,
      formatRate(r.bandwidth),
      r.config,
      r["total-time-ms"].toFixed(1),
      r["downtime-ms"].toFixed(1),
      String(r["downtime-limit-ms"]),
      r["stopped-by"] || (r.status === "completed" ? "—" : r.status),
      String(r.rounds),
      r["mib-sent"].toFixed(1),
      String(r.verified),
    ]);
    const head = columns.map((c) => (c.unit ? `${c.head}, ${c.unit}` : c.head));
    if (v.html) writeFileSync(v.html, compareHtml(rows, head, cells, configs, seed));
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
      for (const line of textTable(columns, cells)) console.log(line);
      console.log(`seed ${seed}; CPU ${run.cpu}; virtual time`);
      const warmed = [...new Set(rows.filter((r) => r["warmup-s"] > 0).map((r) => `${r.config} ${r["warmup-s"]} s`))];
      if (warmed.length)
        console.log(`warm-up before the migration (page history since the VM started): ${warmed.join(", ")}`);
      if (v.html) console.log(`HTML report: ${resolve(v.html as string)}`);
    }
    const bad = rows.filter((r) => r.status !== "completed" || !r.verified);
    if (bad.length) {
      console.error(`pagewire: ${bad.length} of ${rows.length} runs failed or did not verify`);
      return 1;
    }
    return 0;
  },
});

function compareHtml(rows: CompareRow[], head: string[], cells: string[][], configs: Config[], seed: number): string {
  const caseOf = (r: CompareRow) => keepUnits(`${r.guest} @ ${formatRate(r.bandwidth)}`);
  const cases = [...new Set(rows.map(caseOf))];
  const series = (metric: keyof CompareRow) =>
    configs.map((c) => ({
      name: c.label,
      values: cases.map((k) => Number(rows.find((r) => r.config === c.label && caseOf(r) === k)?.[metric] ?? NaN)),
    }));
  const limits = [...new Set(rows.map((r) => r["downtime-limit-ms"]))].map((ms) => ({
    value: ms,
    label: `downtime limit ${ms} ms`,
  }));
  const charts = [
    barChart({ title: "MiB sent", categories: cases, series: series("mib-sent"), yLabel: "MiB" }),
    barChart({ title: "Total time", categories: cases, series: series("total-time-ms"), yLabel: "ms" }),
    barChart({ title: "Downtime", categories: cases, series: series("downtime-ms"), yLabel: "ms", limits }),
    barChart({ title: "Rounds", categories: cases, series: series("rounds"), yLabel: "rounds" }),
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
      charts.push(
        lineChart({
          title: `Downtime vs bandwidth: ${g}`,
          lines,
          xLabel: "bandwidth, MiB/s",
          yLabel: "downtime, ms",
          xScale: "auto",
          yScale: "auto",
          limits,
        }),
      );
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
    `<p>seed ${esc(seed)}, virtual time</p>${cfg}<h2>Results</h2>${table(head, cells)}<h2>Charts</h2>${charts.map((c) => c.svg).join("\n")}`,
  );
}
