import { PagewireError } from "../errors.js";
import type { FlagUses } from "./command.js";

/** A command-line mistake: the CLI prints its one-line message and exits 2. */
export class UsageError extends PagewireError {
  constructor(message: string) {
    super("USAGE", message);
  }
}

/** A `pagewire` sub-command. `run` returns the exit code (0 success, 1 failure). */
export interface Command {
  name: string;
  /** One line for `pagewire --help`. */
  summary: string;
  /** Full help text for `pagewire <name> --help`. */
  help: string;
  /** The flags it takes, all from the option table (src/cli/options.ts). */
  readonly flags: FlagUses;
  /** Reads argv into the command's options (no I/O): usage errors throw here. */
  parse(argv: string[]): unknown;
  run(argv: string[]): Promise<number>;
}
