// The phase timeline: one segment per phase of PhaseLog, as wide as it lasted (with a
// minimum so that a 2 ms commit can still be read), drawn as the migration goes.
import type { PhaseKind, PhaseLog, PhaseSpan } from "./phases.js";

const LABELS: Record<PhaseKind, string> = {
  probe: "probe",
  setup: "handshake",
  round: "round",
  pause: "pause",
  postcopy: "post-copy",
  commit: "commit",
  activation: "activation",
};

export function phaseLabel(s: PhaseSpan): string {
  return s.kind === "round" ? `round ${s.round}` : LABELS[s.kind];
}

const fmt = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`);

/** Updates `el` (a flex row) to show `log`: a child per span, reused between frames. */
export function drawTimeline(el: HTMLElement, log: PhaseLog, heldAfter: boolean): void {
  const now = log.elapsedMs;
  log.spans.forEach((s, i) => {
    let seg = el.children[i] as HTMLElement | undefined;
    if (!seg) {
      seg = document.createElement("div");
      seg.className = "seg";
      seg.innerHTML = "<b></b><small></small>";
      el.append(seg);
    }
    const ms = (s.endMs ?? now) - s.startMs;
    seg.dataset.phase = s.kind;
    if (s.round !== undefined) seg.dataset.round = String(s.round);
    seg.dataset.state = s.endMs === null ? "running" : "done";
    seg.style.flexGrow = String(Math.max(ms, 1));
    seg.title = `${phaseLabel(s)}: ${fmt(ms)} (from ${fmt(s.startMs)})`;
    seg.children[0].textContent = phaseLabel(s);
    seg.children[1].textContent = fmt(ms);
  });
  while (el.children.length > log.spans.length) el.lastElementChild!.remove();
  el.dataset.rounds = String(log.roundsDone);
  el.dataset.outcome = log.outcome;
  el.dataset.held = String(heldAfter);
}
