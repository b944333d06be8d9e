// The demo in a real browser: builds demo/ (vite, with the recording asset), serves it on
// 127.0.0.1 with COOP/COEP, and drives Debian's /usr/bin/chromium headless through
// playwright-core (flags: DEVELOPERS.md). For each mode it runs a migration on the page,
// waits for completion and checks the query-migrate fields, the verified digest and the
// console; screenshots go to test/demo/screenshots/.
//
// Runs under `npm test` when CI is set (and fails if Chromium is missing); otherwise it
// runs when /usr/bin/chromium exists and is skipped with a printed reason.
import { existsSync, mkdirSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveStatic } from "./static-server.js";

const CHROMIUM = process.env.PAGEWIRE_CHROMIUM ?? "/usr/bin/chromium";
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
const repo = fileURLToPath(new URL("../..", import.meta.url));
const shots = join(repo, "test/demo/screenshots");
const ci = !!process.env.CI;
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && !ci)
  console.log(
    `test/demo/chromium.test.ts skipped: no Chromium at ${CHROMIUM} (apt-get install chromium; the test always runs with CI set)`,
  );

type Browser = import("playwright-core").Browser;
type Page = import("playwright-core").Page;

describe.runIf(haveChromium || ci)("demo in headless Chromium", () => {
  let browser: Browser;
  let server: { url: string; close: () => Promise<void> };

  beforeAll(async () => {
    if (!haveChromium)
      throw new Error(`CI: Chromium is missing at ${CHROMIUM}; .ci/run installs it with apt-get install -y chromium`);
    // the same steps as `npm run demo:build` (npm test has built the wasm already)
    execFileSync(process.execPath, [join(repo, "node_modules/tsx/dist/cli.mjs"), "demo/prepare-recording.ts"], {
      cwd: repo,
      stdio: "inherit",
    });
    const { build } = await import("vite");
    await build({ configFile: join(repo, "demo/vite.config.ts"), logLevel: "warn" });
    server = await serveStatic(join(repo, "demo/dist"));
    const { chromium } = await import("playwright-core");
    // launch() gives the browser a fresh temporary profile of its own
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    mkdirSync(shots, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  async function open(query = ""): Promise<{ page: Page; errors: string[] }> {
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const errors: string[] = [];
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(server.url + query);
    await page.waitForSelector("body[data-ready=true]", { timeout: 15_000 });
    return { page, errors };
  }

  const field = (page: Page, name: string) =>
    page.locator(`#report tr[data-field="${name}"] td:nth-child(2)`).textContent();

  async function migrate(
    page: Page,
    settings: { mode: string; workload?: string; size?: string; bandwidth?: string },
  ): Promise<void> {
    await page.selectOption("#mode", settings.mode);
    if (settings.workload) await page.selectOption("#workload", settings.workload);
    if (settings.size) await page.selectOption("#size", settings.size);
    if (settings.bandwidth) await page.fill("#bandwidth", settings.bandwidth);
    await page.click("#start");
    await page.waitForSelector("body[data-status=completed], body[data-status=failed], body[data-status=aborted]", {
      timeout: 30_000,
    });
  }

  async function checkCompleted(page: Page, errors: string[], mode: string, pages: number): Promise<void> {
    expect(await page.textContent("#status")).toMatch(/^completed/);
    expect(await page.getAttribute("#digest", "data-verified")).toBe("true");
    expect(await page.getAttribute("#digest", "data-digest")).toMatch(/^[0-9a-f]{32}$/);
    expect(await field(page, "status")).toBe("completed");
    expect(await field(page, "mode")).toBe(mode);
    expect(await field(page, "ram.total")).toBe(`${pages * 4096} (${(pages / 256).toFixed(2)} MiB)`);
    expect(parseFloat((await field(page, "total-time"))!)).toBeGreaterThan(0);
    expect(parseFloat((await field(page, "downtime"))!)).toBeGreaterThan(0);
    expect(parseInt((await field(page, "ram.transferred"))!, 10)).toBeGreaterThan(0);
    const sent = parseInt((await field(page, "ram.pages-sent"))!, 10);
    expect(sent).toBeGreaterThanOrEqual(pages);
    expect(parseInt((await field(page, "ram.dirty-sync-count"))!, 10)).toBeGreaterThanOrEqual(
      mode === "stop-and-copy" ? 0 : 1,
    );
    expect(errors).toEqual([]);
  }

  for (const mode of ["precopy", "postcopy", "hybrid", "stop-and-copy"]) {
    it(`migrates in ${mode} mode with the guest in a Web Worker, digest verified`, async () => {
      const { page, errors } = await open();
      expect(await page.getAttribute("body", "data-guest")).toBe("worker");
      // pre-copy at the page's default 8 MiB/s iterates several rounds; the others run faster
      await migrate(page, { mode, size: "4096", bandwidth: mode === "precopy" ? undefined : "32" });
      await checkCompleted(page, errors, mode, 4096);
      if (mode === "precopy") {
        expect(await page.locator("#decisions li").count()).toBeGreaterThan(1);
        expect(parseInt((await field(page, "ram.dirty-sync-count"))!, 10)).toBeGreaterThan(2);
      }
      // pure post-copy: the destination guest faults on pages still missing (hybrid has few left, often none faulted)
      if (mode === "postcopy") expect(parseInt((await field(page, "postcopy-requests"))!, 10)).toBeGreaterThan(0);
      await page.screenshot({ path: join(shots, `${mode}.png`), fullPage: true });
      await page.close();
    });
  }

  it("auto mode measures the guest, picks a mode and says why", async () => {
    const { page, errors } = await open();
    await migrate(page, { mode: "auto", size: "4096", bandwidth: "32" });
    const chosen = (await field(page, "mode"))!;
    expect(["precopy", "hybrid", "stop-and-copy"]).toContain(chosen);
    await checkCompleted(page, errors, chosen, 4096);
    expect(await page.textContent("#status")).toContain(`auto → ${chosen}`);
    expect(await page.locator("#decisions").textContent()).toMatch(/auto: /);
    await page.screenshot({ path: join(shots, "auto.png"), fullPage: true });
    await page.close();
  });

  it("replays the real recording (redis window) in pre-copy", async () => {
    const { page, errors } = await open();
    const hasRecording = await page.locator('#workload option[value="recording"]').count();
    if (!hasRecording) {
      console.log("recording workload not offered: ../shared/datasets missing when the demo was built");
      return;
    }
    // 2 MiB/s: the recorded guest dirties pages while the rounds run
    await migrate(page, { mode: "precopy", workload: "recording", bandwidth: "2" });
    await checkCompleted(page, errors, "precopy", 512);
    expect(parseInt((await field(page, "ram.dirty-pages-rate"))!, 10)).toBeGreaterThan(0);
    await page.screenshot({ path: join(shots, "recording.png"), fullPage: true });
    await page.close();
  });

  it("stops a running migration: aborted before the commit, shown on the page, no console errors", async () => {
    const { page, errors } = await open();
    await page.selectOption("#mode", "precopy");
    await page.selectOption("#size", "16384");
    await page.fill("#bandwidth", "4");
    await page.click("#start");
    // mid-run: the first round is on the wire and the map and report are live
    await page.waitForFunction(
      () =>
        Number(document.querySelector('#report tr[data-field="ram.pages-sent"] td:nth-child(2)')?.textContent ?? 0) > 0,
      null,
      { timeout: 15_000 },
    );
    await page.screenshot({ path: join(shots, "running.png"), fullPage: true });
    await page.click("#stop");
    await page.waitForSelector("body[data-status=aborted]", { timeout: 15_000 });
    expect(await page.textContent("#status")).toMatch(/^aborted: migration aborted/);
    expect(await field(page, "status")).toBe("aborted");
    expect(await page.isEnabled("#start")).toBe(true);
    expect(errors).toEqual([]);
    await page.close();
  });

  it("falls back to the main thread without a Worker (?main-thread)", async () => {
    const { page, errors } = await open("?main-thread");
    expect(await page.getAttribute("body", "data-guest")).toBe("main-thread");
    await migrate(page, { mode: "precopy", size: "1024", bandwidth: "16" });
    await checkCompleted(page, errors, "precopy", 1024);
    await page.close();
  });
});
