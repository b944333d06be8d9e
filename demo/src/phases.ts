// The phases of one migration as they happen, for the timeline and the stage texts:
//
//   [probe] → setup → round 0 → round 1 … → pause → [post-copy] → commit → activation
//
// DemoMigration enters each phase from the engine's events (round-start, round-end,
// postcopy, activate), the frames on its transport tap (HELLO ends auto mode's probe,
// COMPLETE starts the commit, ACTIVATE the activation) and the pause callback; times are on
// the migration's clock (step mode's holds do not count).

export type PhaseKind = "probe" | "setup" | "round" | "pause" | "postcopy" | "commit" | "activation";

export interface PhaseSpan {
  kind: PhaseKind;
  /** Round number (kind "round"). */
  round?: number;
  /** Milliseconds since the migration started. */
  startMs: number;
  /** Null while the phase runs. */
  endMs: number | null;
  /** Pages pending when the phase began (rounds: what the round had to send). */
  pending?: number;
}

export class PhaseLog {
  readonly spans: PhaseSpan[] = [];
  /** "done" once activated, "aborted" when it ended before. */
  outcome: "running" | "done" | "aborted" = "running";
  /** Set by the first phase: time before it (kernel loading, guest boot) does not count. */
  #startMs: number | null = null;

  constructor(private readonly nowMs: () => number) {}

  get elapsedMs(): number {
    return this.#startMs === null ? 0 : this.nowMs() - this.#startMs;
  }

  get current(): PhaseSpan | null {
    return this.spans.at(-1) ?? null;
  }

  /** Ends the running phase (if any) and starts `kind`. */
  enter(kind: PhaseKind, extra: { round?: number; pending?: number } = {}): PhaseSpan {
    this.#startMs ??= this.nowMs();
    const at = this.elapsedMs;
    this.#close(at);
    const span: PhaseSpan = { kind, startMs: at, endMs: null, ...extra };
    this.spans.push(span);
    return span;
  }

  /** Ends the running phase without starting another (a round's end: the next phase starts later). */
  endCurrent(): void {
    this.#close(this.elapsedMs);
  }

  finish(outcome: "done" | "aborted"): void {
    this.#close(this.elapsedMs);
    this.outcome = outcome;
  }

  /** Finished pre-copy rounds. */
  get roundsDone(): number {
    return this.spans.filter((s) => s.kind === "round" && s.endMs !== null).length;
  }

  #close(at: number): void {
    const last = this.spans.at(-1);
    if (last && last.endMs === null) last.endMs = at;
  }
}
