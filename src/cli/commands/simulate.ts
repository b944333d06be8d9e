// pagewire simulate: one migration in virtual time (src/sim/), reported QEMU-style.
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { PAGE_SIZE } from "../../kernel/kernel.js";
import { ROUND_COLUMNS, type RoundRow } from "../../engine/report.js";
import { describeDecision } from "../../engine/report-text.js";
import { runScenario, type ScenarioResult } from "../../sim/simulator.js";
import { migrationCharts } from "../chart/migration-charts.js";
import { esc, page, table } from "../html-report.js";
import { simulationProgressLines } from "../migration-progress.js";
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
} from "../scenario.js";
import { defineCommand } from "../command.js";
import { formatBytes, formatRate } from "../units.js";
import { UsageError } from "../usage.js";

export const simulateCommand = defineCommand({
  name: "simulate",
  summary: "migrate a simulated guest in virtual time and report it (default: 1 GiB working-set at 1 Gbit/s)",
  usage: "usage: pagewire simulate [options]",
  about: `Runs the real engine and kernels on a simulated guest over a simulated link, in virtual
time. With no options: a 1 GiB guest running working-set (20000 pages/s over 25 % of RAM)
migrated over 1 Gbit/s with the pagewire preset.`,
  flags: {
    preset: { group: GROUPS.CONFIG },
    selection: { group: GROUPS.CONFIG, help: "override the preset's page-selection policy", absent: "the preset's" },
    termination: { group: GROUPS.CONFIG, help: "override the preset's termination policy", absent: "the preset's" },
    "non-convergence": {
      group: GROUPS.CONFIG,
      help: "override the preset's non-convergence policy",
      absent: "the preset's",
    },
    codecs: { group: GROUPS.CONFIG },
    bandwidth: { group: GROUPS.ENGINE, help: "the simulated link's bandwidth", default: "1Gbit" },
    workload: { group: GROUPS.GUEST, default: null, absent: "working-set" },
    trace: {
      group: GROUPS.GUEST,
      help: "replay a recording instead of a workload: idle, redis, dirtier (shipped) or a 'pagewire record' directory",
    },
    ...SCENARIO_FLAGS,
  },
  epilogue: PRESETS_HELP,
  async run(v) {
    if (v.workload !== undefined && v.trace !== undefined)
      throw new UsageError("simulate: give --workload or --trace, not both");
    const seed = v.seed;
    const guest = guestFor(v, { workload: v.workload, trace: v.trace });
    const bandwidth = v.bandwidth;
    const config = makeConfig(presetFor(v.preset), {
      selection: v.selection,
      termination: v.termination,
      nonConvergence: v["non-convergence"],
      codecs: v.codecs,
      xbzrleCache: v["xbzrle-cache"],
    });
    const run = runOptions(v);
    const { workload, pageCount } = guest.create(seed);
    // --progress: a line on a terminal (auto), JSON lines on stderr (json), or nothing
    const bar = new ProgressBar(v.progress === "auto" && !v.json && Boolean(process.stderr.isTTY));
    const lines = v.progress === "json" ? simulationProgressLines() : null;
    const result = await runScenario({
      ...run,
      workload,
      pageCount,
      bandwidth,
      codecs: config.codecs,
      policy: config.policy,
      downtimeLimitMs: run.downtimeLimitMs ?? config.downtimeLimitMs,
      onProgress: (p) => {
        lines?.(p);
        bar.update(
          p.rounds === 0 ? p.roundPages / p.pageCount : null,
          `${p.paused ? "stop-and-copy" : `round ${p.rounds}`}  t=${p.time.toFixed(2)} s (virtual)  sent ${formatBytes(p.bytesSent)}`,
        );
      },
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
      warmup: result.warmup,
    };
    const json = simulationJson(scenario, result);
    if (v.html) writeFileSync(v.html, simulationHtml(scenario, result, config));
    if (v.json) console.log(JSON.stringify(json, null, 2));
    else {
      console.log(
        `simulate: ${guest.label}, ${formatBytes(pageCount * PAGE_SIZE)} guest, ${formatRate(bandwidth)} link, preset ${config.label}, seed ${seed}, CPU ${result.cpuMode}${result.cpuMode === "model" ? ` (${scenario["cpu-ns-per-page"]} ns/page)` : ""}`,
      );
      if (result.warmup)
        console.log(
          `warm-up: ${result.warmup.seconds} s of guest time before the migration, ${result.warmup.syncs} syncs in the page history (the first: ${result.warmup.bootPages} pages not all zero, modified since the VM started)`,
        );
      console.log(result.report.toTable());
      console.log(guestLine(result));
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
});

/** The repeatable result: no wall-clock fields. */
export function simulationJson(scenario: Record<string, unknown>, r: ScenarioResult): Record<string, unknown> {
  return {
    scenario,
    verified: r.verified,
    "cpu-seconds": Math.round(r.cpuSeconds * 1e6) / 1e6,
    report: r.report.toJSON(),
    guest: roundGuest(r.guest),
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
      ["guest downtime", `${r.guest.downtimeMs.toFixed(1)} ms (pause to running on the destination)`],
      ["guest progress", `${(r.guest.progress * 100).toFixed(2)} %`],
      ["fault stalls", `${r.guest.faultStallMs.toFixed(1)} ms (${r.guest.faults} faults)`],
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

/** One line: what the migration cost the guest. */
export function guestLine(r: ScenarioResult): string {
  const g = r.guest;
  return `guest: progress ${(g.progress * 100).toFixed(2)} % (${g.workSeconds.toFixed(3)} s of work in ${g.elapsedSeconds.toFixed(3)} s), lost ${(g.lostSeconds * 1000).toFixed(1)} ms: downtime ${g.downtimeMs.toFixed(1)} ms (pause to running on the destination), fault stalls ${g.faultStallMs.toFixed(1)} ms (${g.faults} faults, longest ${g.maxFaultStallMs.toFixed(1)} ms)`;
}

function roundGuest(g: ScenarioResult["guest"]): Record<string, number> {
  return Object.fromEntries(Object.entries(g).map(([k, x]) => [k, Math.round(x * 1000) / 1000]));
}
