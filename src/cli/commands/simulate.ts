// pagewire simulate: one migration in virtual time (src/sim/), reported QEMU-style.
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { PAGE_SIZE } from "../../kernel/kernel.js";
import { ROUND_COLUMNS } from "../../engine/report.js";
import { runScenario, type ScenarioResult } from "../../sim/simulator.js";
import { withFakeDirty } from "../../sim/fake-dirty-replay.js";
import { esc, migrationCharts, page, table } from "../html-report.js";
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
import { formatBytes, formatRate, parseNumber, parseRate, parseSize } from "../units.js";
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
  (with --trace, --fake-dirty SHARE adds identical rewrites: SHARE of the dirtied pages, 0..0.99)
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
    const created = guest.create(seed);
    const { pageCount } = created;
    const fakeDirty = traceFakeDirty(v, guest.kind);
    const workload = withFakeDirty(created.workload, fakeDirty, seed);
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
      ...(fakeDirty !== undefined ? { "fake-dirty-share": fakeDirty } : {}),
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
      console.log(guestLine(result));
      console.log(
        `destination memory ${result.verified ? "equals" : "DIFFERS FROM"} the source at the pause; ${result.cpuSeconds.toFixed(3)} s of CPU charged; ${result.wallSeconds.toFixed(1)} s wall`,
      );
      if (v.html) console.log(`HTML report: ${v.html}`);
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

/** --fake-dirty for a trace (workloads take it as their own option): the share of dirtied pages rewritten identically. */
export function traceFakeDirty(v: Record<string, unknown>, kind: "workload" | "trace"): number | undefined {
  const text = v["fake-dirty"] as string | undefined;
  if (kind !== "trace" || text === undefined) return undefined;
  return parseNumber(text, "--fake-dirty", { min: 0, max: 0.99 });
}

/** One line: what the migration cost the guest. */
export function guestLine(r: ScenarioResult): string {
  const g = r.guest;
  return `guest: progress ${(g.progress * 100).toFixed(2)} % (${g.workSeconds.toFixed(3)} s of work in ${g.elapsedSeconds.toFixed(3)} s), lost ${(g.lostSeconds * 1000).toFixed(1)} ms: downtime ${g.downtimeMs.toFixed(1)} ms (pause to running on the destination), fault stalls ${g.faultStallMs.toFixed(1)} ms (${g.faults} faults, longest ${g.maxFaultStallMs.toFixed(1)} ms)`;
}

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
    guest: roundGuest(r.guest),
    timeline: r.timeline.map(([t, b]) => [Math.round(t * 1e6) / 1e6, b]),
  };
}

function roundGuest(g: ScenarioResult["guest"]): Record<string, number> {
  return Object.fromEntries(Object.entries(g).map(([k, x]) => [k, Math.round(x * 1e6) / 1e6]));
}

function simulationHtml(scenario: Record<string, unknown>, r: ScenarioResult, config: Config): string {
  const rep = r.report;
  const summary = table(
    ["figure", "value"],
    [
      ["guest", `${scenario.guest} (${formatBytes(scenario["guest-bytes"] as number)})`],
      ["link", `${scenario["bandwidth-text"]}, latency ${(scenario.latency as number) * 1000} ms`],
      [
        "configuration",
        `${config.label}: ${config.policy.selection} / ${config.policy.termination} / ${config.policy.nonConvergence ?? "none"}`,
      ],
      ["status", rep.status],
      ["total-time", `${rep.totalTime.toFixed(1)} ms`],
      ["downtime", `${rep.downtime.toFixed(1)} ms`],
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
    [...ROUND_COLUMNS],
    rep.rounds.map((row) => ROUND_COLUMNS.map((c) => (c === "seconds" ? row.seconds.toFixed(3) : row[c]))),
  );
  return page(
    `pagewire simulate — ${scenario.guest}`,
    `${summary}\n<h2>Charts</h2>\n${migrationCharts(rep.rounds, r.timeline)}\n<h2>Rounds</h2>\n${rounds}\n<h2>Report (JSON)</h2>\n<pre>${esc(JSON.stringify(rep.toJSON(), null, 2))}</pre>`,
  );
}
