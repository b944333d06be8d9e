// Progress of a running migration on the command line, from the engine's events
// (engine/migration-events.ts): one updating line on a terminal (what `virsh domjobinfo`
// and QEMU's `info migrate` show: %, bytes, rate, round, dirty rate, expected downtime,
// ETA), JSON lines with --progress=json (on stderr: stdout keeps the report), nothing when
// stderr is not a terminal and no format was asked for.
import type { MigrationDestination } from "../engine/destination.js";
import type {
  DestinationEvents,
  DestinationProgress,
  EventHub,
  MigrationProgress,
  SourceEvents,
} from "../engine/migration-events.js";
import type { MigrationSource } from "../engine/source.js";
import type { ScenarioProgress } from "../sim/simulator.js";
import { ProgressBar } from "./progress.js";
import { formatBytes } from "./units.js";

/** --progress: auto (a line on a terminal, else nothing), json (JSON lines), off. */
export type ProgressMode = "auto" | "json" | "off";

export const PROGRESS_MODES: readonly ProgressMode[] = ["auto", "json", "off"];

interface Sink {
  write(text: string): void;
  isTTY?: boolean;
}

/** The source's one-line summary: "precopy round 3  42%  430.1 MiB of 1.00 GiB sent  …". */
export function sourceProgressLine(p: MigrationProgress): string {
  const done = p.total > 0 ? Math.min(100, Math.max(0, ((p.total - p.remaining) / p.total) * 100)) : 0;
  const rate = p.elapsedMs > 0 ? p.transferred / (p.elapsedMs / 1000) : 0;
  const eta = rate > 0 && p.remaining > 0 ? p.remaining / rate : 0;
  const parts = [
    `${p.phase}${p.phase === "setup" || p.phase === "commit" || p.phase === "done" ? "" : ` round ${p.round}`}`,
    `${done.toFixed(0)}%`,
    `${formatBytes(p.transferred)} sent`,
    `${formatBytes(rate)}/s`,
    `remaining ${formatBytes(p.remaining)}`,
  ];
  if (p.dirtyPagesRate > 0) parts.push(`dirty ${p.dirtyPagesRate} pages/s`);
  if (p.phase === "precopy") parts.push(`expected downtime ${Math.round(p.expectedDowntimeMs)} ms`);
  if (eta > 0) parts.push(`ETA ${formatSeconds(eta)}`);
  return parts.join("  ");
}

export function destinationProgressLine(p: DestinationProgress): string {
  const rate = p.elapsedMs > 0 ? p.bytesReceived / (p.elapsedMs / 1000) : 0;
  const parts = [
    p.state,
    p.round >= 0 ? `round ${p.round} in` : "",
    `${formatBytes(p.bytesReceived)} received`,
    `${formatBytes(rate)}/s`,
    `${p.pagesReceived} pages`,
    p.missingPages ? `${p.missingPages} pages missing` : "",
  ];
  return parts.filter(Boolean).join("  ");
}

/** Shows the source's progress as `mode` says; returns a function that ends the display. */
export function showSourceProgress(
  source: MigrationSource,
  mode: ProgressMode,
  sink: Sink = process.stderr,
): () => void {
  if (mode === "json")
    return jsonLines<SourceEvents>(
      source.events,
      { progress: (e) => e.progress, "round-end": (e) => e.row },
      ["handshake", "pause", "postcopy", "commit", "activate", "abort", "recovery", "in-doubt"],
      sink,
    );
  const bar = new ProgressBar(mode === "auto" && Boolean(sink.isTTY), sink);
  if (!bar.enabled) return () => {};
  const off = source.on("progress", (e) => {
    const p = e.progress;
    bar.update(p.total ? (p.total - p.remaining) / p.total : null, sourceProgressLine(p));
  });
  return () => {
    off();
    bar.done();
  };
}

/** Shows the destination's progress as `mode` says; returns a function that ends the display. */
export function showDestinationProgress(
  destination: MigrationDestination,
  mode: ProgressMode,
  sink: Sink = process.stderr,
): () => void {
  if (mode === "json")
    return jsonLines<DestinationEvents>(
      destination.events,
      { progress: (e) => e.progress },
      ["handshake", "round-end", "prepared", "postcopy", "activate", "abort", "recovery", "in-doubt"],
      sink,
    );
  const bar = new ProgressBar(mode === "auto" && Boolean(sink.isTTY), sink);
  if (!bar.enabled) return () => {};
  const off = destination.on("progress", (e) => bar.update(null, destinationProgressLine(e.progress)));
  return () => {
    off();
    bar.done();
  };
}

/**
 * One JSON line per event: `flat` events print the object `flat[type]` picks out (a
 * progress snapshot, a round row), the `plain` ones their fields; `event` names the type.
 */
function jsonLines<M extends object>(
  hub: EventHub<M>,
  flat: { [K in keyof M]?: (e: M[K]) => object },
  plain: ReadonlyArray<keyof M>,
  sink: Sink,
): () => void {
  const line = (type: keyof M, o: object) => sink.write(`${JSON.stringify({ event: type, ...o, type: undefined })}\n`);
  const offs = [
    ...(Object.keys(flat) as Array<keyof M>).map((t) => hub.on(t, (e) => line(t, flat[t]!(e)))),
    ...plain.map((t) => hub.on(t, (e) => line(t, e))),
  ];
  return () => offs.forEach((off) => off());
}

function formatSeconds(s: number): string {
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

/**
 * simulate --progress=json: one JSON line per quarter of a virtual second and at each new
 * round or the pause (the simulator reports far more often than that).
 */
export function simulationProgressLines(sink: Sink = process.stderr): (p: ScenarioProgress) => void {
  let lastTime = -Infinity;
  let lastRound = -1;
  let lastPaused = false;
  return (p) => {
    if (p.time - lastTime < 0.25 && p.rounds === lastRound && p.paused === lastPaused) return;
    lastTime = p.time;
    lastRound = p.rounds;
    lastPaused = p.paused;
    sink.write(
      `${JSON.stringify({ event: "progress", virtualSeconds: Math.round(p.time * 1000) / 1000, round: p.rounds, paused: p.paused, transferred: p.bytesSent, roundPages: p.roundPages, pageCount: p.pageCount })}\n`,
    );
  };
}
