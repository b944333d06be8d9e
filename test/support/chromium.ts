// Debian's Chromium for the browser tests, driven by playwright-core (never a downloaded
// browser): where it is, the flags that keep it off the network, and whether a test runs
// (always with CI set: a missing Chromium then fails loudly; elsewhere it skips, saying why).
import { existsSync } from "node:fs";

export const CHROMIUM = process.env.PAGEWIRE_CHROMIUM ?? "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-sync",
  "--disable-quic",
];

const ci = !!process.env.CI;
const present = existsSync(CHROMIUM);

/** True when `test` should run; logs why it skips otherwise. */
export function chromiumTestRuns(test: string): boolean {
  if (!present && !ci)
    console.log(
      `${test} skipped: no Chromium at ${CHROMIUM} (apt-get install chromium; the test always runs with CI set)`,
    );
  return present || ci;
}

/** Launches Chromium headless with a fresh profile; with CI set and no Chromium, fails saying how to install it. */
export async function launchChromium(): Promise<import("playwright-core").Browser> {
  if (!present)
    throw new Error(`CI: Chromium is missing at ${CHROMIUM}; .ci/run installs it with apt-get install -y chromium`);
  const { chromium } = await import("playwright-core");
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}
