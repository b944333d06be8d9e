// The charts of one migration, per round and over time: pages by encoding (stacked),
// pages dirtied / sent / deferred, bytes, the expected downtime against the limit, and the
// cumulative bytes over time with a marker at each round start and at the pause.
import type { MigrationReport, RoundRow } from "../../engine/report.js";
import { CODECS } from "../../codec/codecs.js";
import { barChart, type Chart } from "./bar-chart.js";
import { lineChart } from "./line-chart.js";

export function roundLabel(r: RoundRow): string {
  return r.phase === "precopy" ? String(r.round) : `${r.round} ${r.phase}`;
}

/** The pause marker goes before the first round that is not pre-copy. */
function pauseMarker(rounds: RoundRow[], mode: string) {
  const at = rounds.findIndex((r) => r.phase !== "precopy");
  if (at < 0) return [];
  return [
    {
      before: at,
      label: mode === "precopy" || mode === "stop-and-copy" ? "pause" : "pause, post-copy",
      kind: "pause" as const,
    },
  ];
}

export function migrationCharts(
  report: MigrationReport,
  timeline: Array<[number, number]>,
  downtimeLimitMs: number,
): Chart[] {
  const rounds = report.rounds;
  const cats = rounds.map(roundLabel);
  const markers = pauseMarker(rounds, report.mode);
  const limit = [{ value: downtimeLimitMs, label: `downtime limit ${downtimeLimitMs} ms` }];
  const charts: Chart[] = [
    barChart({
      title: "Pages per round by encoding",
      categories: cats,
      series: CODECS.map((c) => ({
        name: c.count === "skipped" ? "skipped (unchanged)" : c.name,
        values: rounds.map((r) => r[c.count]),
      })),
      xLabel: "round",
      yLabel: "pages",
      stacked: true,
      sharesWhenSpread: true,
      markers,
    }),
    barChart({
      title: "Pages per round: dirtied, sent, deferred",
      categories: cats,
      series: [
        { name: "dirtied", values: rounds.map((r) => r.dirtied) },
        { name: "sent", values: rounds.map((r) => r.sent) },
        { name: "deferred", values: rounds.map((r) => r.deferred) },
      ],
      xLabel: "round",
      yLabel: "pages",
      markers,
    }),
    barChart({
      title: "Bytes per round",
      categories: cats,
      series: [{ name: "bytes sent", values: rounds.map((r) => r.bytes / 2 ** 20) }],
      xLabel: "round",
      yLabel: "MiB",
      markers,
    }),
  ];
  const expected = expectedDowntimes(report);
  if (expected.length)
    charts.push(
      barChart({
        title: "Downtime: expected after each round, and the actual one",
        categories: [...expected.map((e) => e.label), "actual"],
        series: [
          {
            name: "expected if stopped here (pending ÷ round throughput)",
            values: [...expected.map((e) => e.ms), NaN],
          },
          { name: "actual downtime", values: [...expected.map(() => NaN), report.downtime] },
        ],
        xLabel: "round",
        yLabel: "ms",
        stacked: true, // one bar per category: expected or actual
        limits: limit,
        markers: [{ before: expected.length, label: "pause", kind: "pause" }],
      }),
    );
  charts.push(
    lineChart({
      title: "Cumulative bytes over time",
      lines: [{ name: "delivered to the destination", points: timeline.map(([t, b]) => [t, b / 2 ** 20]) }],
      xLabel: "virtual seconds",
      yLabel: "MiB",
      markers: timeMarkers(report),
    }),
  );
  return charts;
}

/** QEMU's expected downtime after each pre-copy round: the pages then pending over the round's throughput. */
function expectedDowntimes(report: MigrationReport): Array<{ label: string; ms: number }> {
  const out: Array<{ label: string; ms: number }> = [];
  const rounds = report.rounds;
  for (let i = 0; i + 1 < rounds.length && rounds[i].phase === "precopy"; i++) {
    const r = rounds[i];
    const throughput = r.seconds > 0 ? r.bytes / r.seconds : 0;
    if (throughput > 0)
      out.push({ label: roundLabel(r), ms: ((rounds[i + 1].dirtied * report.pageSize) / throughput) * 1000 });
  }
  return out;
}

/** Round starts (after the setup) and the pause, in seconds since the start. */
function timeMarkers(report: MigrationReport) {
  const markers: Array<{ at: number; label: string; kind: "round" | "pause" }> = [];
  let t = report.setupTime / 1000;
  for (const r of report.rounds) {
    if (r.phase !== "precopy") {
      markers.push({ at: t, label: r.phase === "postcopy" ? "pause, post-copy" : "pause", kind: "pause" });
      break;
    }
    markers.push({ at: t, label: `r${r.round}`, kind: "round" });
    t += r.seconds;
  }
  return markers;
}
