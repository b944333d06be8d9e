import { loadKernel } from "../../kernel/loader.js";
import { runSelfCheck } from "../selfcheck.js";
import { defineCommand } from "../command.js";

export const selfcheckCommand = defineCommand({
  name: "selfcheck",
  summary: "load the kernel and check it against plain-JS answers",
  usage: "usage: pagewire selfcheck",
  about: "Loads the WASM kernel and checks its bitmap and page kernels against plain-JS answers.",
  flags: {},
  async run() {
    const k = await loadKernel();
    const results = runSelfCheck(k);
    for (const r of results) console.log(`${r.ok ? "ok  " : "FAIL"} ${r.name}${r.ok ? "" : `: ${r.detail}`}`);
    const failed = results.filter((r) => !r.ok).length;
    console.log(
      `kernel self-check: ${results.length - failed} passed, ${failed} failed (${k.shared ? "shared" : "private"} memory)`,
    );
    return failed === 0 ? 0 : 1;
  },
});
