// pagewire simulate: one migration in virtual time (src/sim/), reported QEMU-style.
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { PAGE_SIZE } from "../../kernel/kernel.js";
import { ROUND_COLUMNS, type RoundRow } from "../../engine/report.js";
import { describeDecision } from "../../engine/report-text.js";
import { runScenario, type ScenarioResult } from "../../sim/simulator.js";
import { migrationCharts } from "../chart/migration-charts.js";
import { esc, page, table } from "../html-report.js";
import { ProgressBar } from "../progress.js";
import {
  guestFor,
  makeConfig,
  presetFor,
  runOptions,
  SCENARIO_HELP,
  SCENARIO_OPTIONS,
  type Config,
} from "../scenario.js";
import { formatBytes, formatRate, parseRate, parseSize } from "../units.js";
import { UsageError, type Command } from "../usage.js";

const DEFAULT_GUEST = 1 << 30;
const DEFAULT_BANDWIDTH = 125e6; // 1 Gbit/s

export const simulateCommand: Command = {
  name: "simulate",
  summary: "migrate a simulated guest in virtual time and report it (default: 1 GiB working-set at 1 Gbit/s)",
  help: `usage: pagewire simulate [options]

Runs the real engine and kernels on a simulated guest over a simulated link, in virtual
time. With no options: a 1 GiB guest running working-set (20000 pages/s over 25 % of RAM)
migrated over 1 Gbit/s with the pagewire preset.

  --preset NAME          engine configuration (default pagewire)
  --selection NAME       override the preset's page-selection policy
  --termination NAME     override the termination policy
  --non-convergence NAME override the non-convergence policy
  --codecs LIST          codec stages, e.g. zero,xbzrle (or all, none)
  --bandwidth RATE       link bandwidth (default 1Gbit; e.g. 100MiB/s)
${SCENARIO_HELP}`,
  async run(argv) {
    const v = parse(argv).values as Record<string, string | boolean | undefined>;
    const seed = runOptionsSeed(v);
    const guest = guestFor(
      v,
      { workload: v.workload as string | undefined, trace: v.trace as string | undefined },
      DEFAULT_GUEST,
    );
    const bandwidth = v.bandwidth ? parseRate(v.bandwidth as string, "--bandwidth") : DEFAULT_BANDWIDTH;
    const config = makeConfig(presetFor((v.preset as string | undefined) ?? "pagewire"), {
      selection: v.selection as string | undefined,
      termination: v.termination as string | undefined,
      nonConvergence: v["non-convergence"] as string | undefined,
      codecs: v.codecs as string | undefined,
      xbzrleCache: v["xbzrle-cache"] ? parseSize(v["xbzrle-cache"] as string, "--xbzrle-cache") : undefined,
    });
    const run = runOptions(v);
    const { workload, pageCount } = guest.create(seed);
    const bar = new ProgressBar(!v.json && Boolean(process.stderr.isTTY));
    const result = await runScenario({
      ...run,
      workload,
      pageCount,
      bandwidth,
      codecs: config.codecs,
      policy: config.policy,
      downtimeLimitMs: run.downtimeLimitMs ?? config.downtimeLimitMs,
      onProgress: (p) =>
        bar.update(
          p.rounds === 0 ? p.roundPages / p.pageCount : null,
          `${p.paused ? "stop-and-copy" : `round ${p.rounds}`}  t=${p.time.toFixed(2)} s  sent ${formatBytes(p.bytesSent)}`,
        ),
    });
    bar.done();
    const scenario = {
      guest: guest.label,
      "guest-bytes": pageCount * PAGE_SIZE,
      bandwidth,
      "bandwidth-text": formatRate(bandwidth),
      latency: run.latency ?? 0.0005,
      jitter: run.jitter ?? 0,
      config: config.label,
      policy: config.policy,
      codecs: config.codecs,
      "downtime-limit-ms": run.downtimeLimitMs ?? config.downtimeLimitMs,
      mode: run.mode ?? "precopy",
      seed,
      cpu: result.cpuMode,
      "cpu-ns-per-page": result.cpuMode === "model" ? (run.cpuNsPerPage ?? 400) : undefined,
    };
    const json = simulationJson(scenario, result);
    if (v.html) writeFileSync(v.html as string, simulationHtml(scenario, result, config));
    if (v.json) console.log(JSON.stringify(json, null, 2));
    else {
      console.log(
        `simulate: ${guest.label}, ${formatBytes(pageCount * PAGE_SIZE)} guest, ${formatRate(bandwidth)} link, preset ${config.label}, seed ${seed}, CPU ${result.cpuMode}${result.cpuMode === "model" ? ` (${scenario["cpu-ns-per-page"]} ns/page)` : ""}`,
      );
      console.log(result.report.toTable());
      console.log(
        `destination memory ${result.verified ? "equals" : "DIFFERS FROM"} the source at the pause; ${result.cpuSeconds.toFixed(3)} s of CPU charged; ${result.wallSeconds.toFixed(1)} s wall`,
      );
      if (v.html) console.log(`HTML report: ${resolve(v.html as string)}`);
    }
    if (result.report.status !== "completed" || !result.verified) {
      console.error(
        `pagewire: simulation ${result.report.status !== "completed" ? "aborted" : "ended with different memory on the destination"}`,
      );
      return 1;
    }
    return 0;
  },
};

function runOptionsSeed(v: Record<string, unknown>): number {
  return runOptions(v as Record<string, string | boolean | undefined>).seed ?? 1;
}

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        ...SCENARIO_OPTIONS,
        workload: { type: "string" },
        trace: { type: "string" },
        bandwidth: { type: "string" },
        preset: { type: "string" },
        selection: { type: "string" },
        termination: { type: "string" },
        "non-convergence": { type: "string" },
        codecs: { type: "string" },
      },
    });
  } catch (e) {
    throw new UsageError(`simulate: ${(e as Error).message.split("\n")[0]}`);
  }
}

/** The repeatable result: no wall-clock fields. */
export function simulationJson(scenario: Record<string, unknown>, r: ScenarioResult): Record<string, unknown> {
  return {
    scenario,
    verified: r.verified,
    "cpu-seconds": Math.round(r.cpuSeconds * 1e6) / 1e6,
    report: r.report.toJSON(),
    timeline: r.timeline.map(([t, b]) => [Math.round(t * 1e6) / 1e6, b]),
  };
}

const ROUND_UNITS: Partial<Record<keyof RoundRow, string>> = { bytes: "bytes, MiB", seconds: "seconds, s" };

function simulationHtml(scenario: Record<string, unknown>, r: ScenarioResult, config: Config): string {
  const rep = r.report;
  const limitMs = scenario["downtime-limit-ms"] as number;
  const summary = table(
    ["figure", "value"],
    [
      ["guest", `${scenario.guest} (${formatBytes(scenario["guest-bytes"] as number)})`],
      ["link", `${scenario["bandwidth-text"]}, latency ${+((scenario.latency as number) * 1000).toFixed(3)} ms`],
      [
        "configuration",
        `${config.label}: ${config.policy.selection} / ${config.policy.termination} / ${config.policy.nonConvergence ?? "none"}`,
      ],
      ["status", rep.status],
      ["stopped by", rep.stoppedBy || "—"],
      ["total-time", `${rep.totalTime.toFixed(1)} ms`],
      ["downtime", `${rep.downtime.toFixed(1)} ms (limit ${limitMs} ms)`],
      ["rounds", rep.rounds.length],
      ["transferred", formatBytes(rep.ram.transferred)],
      ["verified", String(r.verified)],
      ["seed", String(scenario.seed)],
      ["CPU time", `${scenario.cpu} (${r.cpuSeconds.toFixed(3)} s)`],
    ],
  );
  const rounds = table(
    ROUND_COLUMNS.map((c) => ROUND_UNITS[c] ?? (c === "round" || c === "phase" ? c : `${c}, pages`)),
    rep.rounds.map((row) =>
      ROUND_COLUMNS.map((c) =>
        c === "seconds" ? row.seconds.toFixed(3) : c === "bytes" ? (row.bytes / 2 ** 20).toFixed(3) : row[c],
      ),
    ),
  );
  const decisions = rep.decisions.map((d) => describeDecision(d, rep.pageSize));
  const charts = migrationCharts(rep, r.timeline, limitMs).map((c) => c.svg);
  return page(
    `pagewire simulate — ${scenario.guest}`,
    `${summary}\n<h2>Charts</h2>\n${charts.join("\n")}\n<h2>Rounds</h2>\n${rounds}\n<h2>Decisions</h2>\n<pre class="wrap">${esc(decisions.join("\n"))}</pre>\n<h2>Report (JSON)</h2>\n<pre>${esc(JSON.stringify(rep.toJSON(), null, 2))}</pre>`,
  );
}
