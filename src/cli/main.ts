#!/usr/bin/env node
// The `pagewire` command: dispatches to one module per sub-command (src/cli/commands/).
// Exit codes: 0 success, 1 failure (one line on stderr), 2 usage error (one line).
import { COMMANDS } from "./commands/index.js";
import { UsageError } from "./usage.js";

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `usage: pagewire <command> [options]\n\ncommands:\n${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join("\n")}\n\n'pagewire <command> --help' shows a command's options, their defaults and units.`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === "--help" || name === "-h") {
    console.log(usage());
    return 0;
  }
  if (name === undefined) {
    console.error(usage());
    return 2;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) throw new UsageError(`unknown command '${name}' (see pagewire --help)`);
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(command.help);
    return 0;
  }
  return command.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const e = err as { code?: string; message?: string };
    console.error(`pagewire: ${e?.message ?? String(err)}`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
