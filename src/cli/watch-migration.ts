// A migration run by a CLI command: its progress shown as --progress says, and ^C / SIGTERM
// cancelling it the engine's way (interrupt.ts) while it runs. The command makes one watch,
// passes `signal` to migrate() (or to the library call that runs it) and attaches the
// MigrationSource / MigrationDestination once it exists.
import type { MigrationDestination } from "../engine/destination.js";
import type { MigrationSource } from "../engine/source.js";
import { cancelOnInterrupt } from "./interrupt.js";
import { type ProgressMode, showDestinationProgress, showSourceProgress } from "./migration-progress.js";

export interface MigrationWatch {
  signal: AbortSignal;
  attachSource(source: MigrationSource): void;
  attachDestination(destination: MigrationDestination): void;
  dispose(): void;
}

/** Until dispose(): progress of what is attached, and signals cancelling `signal`. */
export function watchMigration(command: string, progress: ProgressMode, { interrupt = true } = {}): MigrationWatch {
  let source: MigrationSource | null = null;
  const stops: Array<() => void> = [];
  // past the decision a cancel changes nothing: the message says so
  const decided = () => !!source && !["running", "paused", "aborted"].includes(source.state);
  const signals = interrupt ? cancelOnInterrupt(command, decided) : null;
  return {
    signal: signals?.signal ?? new AbortController().signal,
    attachSource(s) {
      source = s;
      stops.push(showSourceProgress(s, progress));
    },
    attachDestination(d) {
      stops.push(showDestinationProgress(d, progress));
    },
    dispose() {
      for (const stop of stops.splice(0)) stop();
      signals?.dispose();
    },
  };
}
