import { PagewireError } from "../errors.js";

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
  run(argv: string[]): Promise<number>;
}
