#!/usr/bin/env node
import { loadKernel } from "../kernel/loader.js";
import { runSelfCheck } from "./selfcheck.js";

const USAGE = `usage: pagewire <command>

commands:
  selfcheck   load the kernel and check it against plain-JS answers`;

async function main(argv: string[]): Promise<number> {
  const [command] = argv;
  if (command === "--help" || command === "-h" || command === undefined) {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === "selfcheck") {
    const k = await loadKernel();
    const results = runSelfCheck(k);
    for (const r of results) console.log(`${r.ok ? "ok  " : "FAIL"} ${r.name}${r.ok ? "" : `: ${r.detail}`}`);
    const failed = results.filter((r) => !r.ok).length;
    console.log(`kernel self-check: ${results.length - failed} passed, ${failed} failed (${k.shared ? "shared" : "private"} memory)`);
    return failed === 0 ? 0 : 1;
  }
  console.error(`pagewire: unknown command '${command}' (see pagewire --help)`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`pagewire: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
