// The demo in a real browser: builds demo/ (vite, with the recording asset), serves it on
// 127.0.0.1 with COOP/COEP, and drives Debian's /usr/bin/chromium headless through
// playwright-core (flags: DEVELOPERS.md). For each mode it runs a migration on the page,
// waits for completion and checks the query-migrate fields, the verified digest, the
// timeline's phases, both memory maps (pixels of the canvases) and the console; it checks
// the stage texts and live totals mid-run, step mode round by round, auto mode's measured
// inputs and the modes side by side. Screenshots go to test/demo/screenshots/.
//
// The page's default run is slow on purpose (about 15 s, for a person to watch); the tests
// set faster controls through the URL (?bandwidth=8&rate=3000 …, see demo/src/main.ts).
//
// Runs under `npm test` when CI is set (and fails if Chromium is missing); otherwise it
// runs when /usr/bin/chromium exists and is skipped with a printed reason.
import { mkdirSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveStatic } from "./static-server.js";
import { DEST_STYLES, SOURCE_STYLES } from "../../demo/src/page-states.js";
import { chromiumTestRuns, launchChromium } from "../support/chromium.js";

/** The settings the tests ran before the page's default became slow: a run of a second or two. */
const FAST = "?rate=3000&bandwidth=8&nonconvergence=force-stop";
const repo = fileURLToPath(new URL("../..", import.meta.url));
const shots = join(repo, "test/demo/screenshots");

type Browser = import("playwright-core").Browser;
type Page = import("playwright-core").Page;

describe.runIf(chromiumTestRuns("test/demo/chromium.test.ts"))("demo in headless Chromium", () => {
  let browser: Browser;
  let server: { url: string; close: () => Promise<void> };

  beforeAll(async () => {
    // the same steps as `npm run demo:build` (npm test has built the wasm already)
    execFileSync(process.execPath, [join(repo, "node_modules/tsx/dist/cli.mjs"), "demo/prepare-recording.ts"], {
      cwd: repo,
      stdio: "inherit",
    });
    const { build } = await import("vite");
    await build({ configFile: join(repo, "demo/vite.config.ts"), logLevel: "warn" });
    server = await serveStatic(join(repo, "demo/dist"));
    browser = await launchChromium(); // a fresh temporary profile of its own
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

  /** Pixels of `canvas` painted in each colour (the maps fill cells with opaque colours, so the match is exact). */
  async function mapColors(page: Page, canvas: string, colors: string[]): Promise<number[]> {
    return page.evaluate(
      ([id, hexes]) => {
        const c = document.getElementById(id) as HTMLCanvasElement;
        const d = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
        const want = hexes.map((h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)));
        const counts = hexes.map(() => 0);
        for (let i = 0; i < d.length; i += 4)
          want.forEach(([r, g, b], k) => {
            if (d[i] === r && d[i + 1] === g && d[i + 2] === b && d[i + 3] === 255) counts[k]++;
          });
        return counts;
      },
      [canvas, colors] as const,
    );
  }
  const color = (styles: typeof SOURCE_STYLES, name: string) => styles.find((s) => s.name === name)!.color;
  const codecColors = (styles: typeof SOURCE_STYLES) => styles.filter((s) => s.codec).map((s) => s.color);

  /** Both maps after a completed migration: every page sent, every page at the destination, none missing. */
  async function checkMaps(page: Page): Promise<void> {
    const [unsent] = await mapColors(page, "map", [color(SOURCE_STYLES, "not sent yet")]);
    const source = await mapColors(page, "map", [
      color(SOURCE_STYLES, "sent, unchanged"),
      ...codecColors(SOURCE_STYLES),
    ]);
    expect(unsent).toBe(0);
    expect(source.reduce((a, b) => a + b)).toBeGreaterThan(1000);
    const [absent, missing] = await mapColors(page, "dest-map", [
      color(DEST_STYLES, "not here yet"),
      color(DEST_STYLES, "missing (post-copy)"),
    ]);
    const here = await mapColors(page, "dest-map", [
      color(DEST_STYLES, "held from an earlier round"),
      color(DEST_STYLES, "fault: fetched on demand"),
      ...codecColors(DEST_STYLES),
    ]);
    expect([absent, missing]).toEqual([0, 0]);
    expect(here.reduce((a, b) => a + b)).toBeGreaterThan(1000);
  }

  const phases = (page: Page) =>
    page.evaluate(() => Array.from(document.querySelectorAll<HTMLElement>("#timeline .seg"), (s) => s.dataset.phase));

  /** The timeline of a finished run: its phases in order, each ended. */
  async function checkTimeline(page: Page, mode: string): Promise<void> {
    const seen = await phases(page);
    const rounds = seen.filter((p) => p === "round").length;
    const rest = seen.filter((p) => p !== "round");
    const expected = {
      precopy: ["setup", "pause", "commit", "activation"],
      hybrid: ["setup", "pause", "postcopy", "commit", "activation"],
      postcopy: ["setup", "pause", "postcopy", "commit", "activation"],
      "stop-and-copy": ["setup", "pause", "commit", "activation"],
    }[mode];
    expect(rest).toEqual(expected);
    if (mode === "precopy" || mode === "hybrid") {
      expect(rounds).toBeGreaterThanOrEqual(1);
      // rounds come between the handshake and the pause
      expect(seen.slice(1, 1 + rounds).every((p) => p === "round")).toBe(true);
    } else expect(rounds).toBe(0);
    expect(await page.getAttribute("#timeline", "data-outcome")).toBe("done");
    expect(await page.locator('#timeline .seg[data-state="running"]').count()).toBe(0);
    expect(await page.getAttribute("#stage", "data-phase")).toBe("done");
    // the stage cards: every stage of this mode passed, the others dimmed
    const cards = await page.evaluate(() =>
      Object.fromEntries(
        Array.from(document.querySelectorAll<HTMLElement>("#stage-cards li"), (li) => [
          li.dataset.stage,
          li.dataset.state,
        ]),
      ),
    );
    for (const p of [...new Set(seen)]) expect(cards[p!]).toBe("done");
    expect(Object.values(cards)).not.toContain("active");
  }

  for (const mode of ["postcopy", "hybrid", "stop-and-copy"]) {
    it(`migrates in ${mode} mode with the guest in a Web Worker: digest verified, timeline, both maps`, async () => {
      const { page, errors } = await open(FAST);
      expect(await page.getAttribute("body", "data-guest")).toBe("worker");
      await migrate(page, { mode, size: "4096", bandwidth: "32" });
      await checkCompleted(page, errors, mode, 4096);
      await checkTimeline(page, mode);
      await checkMaps(page);
      // pure post-copy: the destination guest faults on pages still missing (hybrid has few
      // left, often none faulted); each fault is marked on the destination map
      const faults = parseInt((await field(page, "postcopy-requests"))!, 10);
      const [pink] = await mapColors(page, "dest-map", [color(DEST_STYLES, "fault: fetched on demand")]);
      if (mode === "postcopy") expect(faults).toBeGreaterThan(0);
      // the destination counts every fault it requested; the source, the requests it served
      // (a page its push sent first is not served again): live ≥ report
      const live = parseInt((await page.textContent('#live dd[data-field="faults"]'))!, 10);
      expect(live).toBeGreaterThanOrEqual(faults);
      expect(pink > 0).toBe(live > 0);
      await page.screenshot({ path: join(shots, `${mode}.png`), fullPage: true });
      await page.close();
    });
  }

  it("migrates in precopy mode: the stage explained and live totals while it runs; digest, timeline, both maps", async () => {
    // 2 MiB/s: round 0 lasts a few seconds, then pre-copy iterates until force-stop
    const { page, errors } = await open(`${FAST}&bandwidth=2&size=4096`);
    expect(await page.getAttribute("body", "data-guest")).toBe("worker");
    await page.click("#start");
    // one look at the page, taken while it runs: the live totals move before the report has any
    const live = await page.waitForFunction(
      () => {
        const dd = (f: string) => document.querySelector(`#live dd[data-field="${f}"]`)?.textContent ?? "";
        const report = document.querySelector('#report tr[data-field="ram.transferred"] td:nth-child(2)');
        const stage = document.getElementById("stage")!;
        const look = {
          status: document.body.dataset.status,
          phase: stage.dataset.phase,
          title: document.getElementById("stage-title")!.textContent,
          text: document.getElementById("stage-text")!.textContent,
          active: document.querySelector<HTMLElement>('#stage-cards li[data-state="active"]')?.dataset.stage,
          running: document.querySelector<HTMLElement>('#timeline .seg[data-state="running"]')?.dataset.phase,
          transferred: Number(document.getElementById("live")!.dataset.transferred),
          pages: Number(document.getElementById("live")!.dataset.pages),
          rate: parseFloat(dd("rate")),
          remaining: parseFloat(dd("remaining")),
          expected: dd("expected-downtime"),
          elapsed: parseFloat(dd("elapsed")),
          reportTransferred: parseInt(report?.textContent ?? "0", 10),
        };
        return look.phase === "round" && look.pages > 300 && look.rate > 0 ? look : null;
      },
      null,
      { timeout: 20_000, polling: 100 },
    );
    const look = (await live.jsonValue())!;
    await page.screenshot({ path: join(shots, "running.png"), fullPage: true });
    expect(look.status).toBe("running");
    expect(look.title).toMatch(/^Round 0 · precopy/);
    expect(look.text).toMatch(/Round 0: every one of the 4096 pages goes once/);
    expect(look.active).toBe("round");
    expect(look.running).toBe("round");
    expect(look.transferred).toBeGreaterThan(look.pages * 100); // frames of page records, not counters
    expect(look.remaining).toBeGreaterThan(0);
    expect(look.expected).toMatch(/^\d+ ms$/);
    expect(look.elapsed).toBeGreaterThan(0);
    // the engine's progress events drive the totals; its report is live too (QEMU's query-migrate while active)
    expect(look.reportTransferred).toBeGreaterThan(0);
    // the card texts are there for every stage, the probe's dimmed in pre-copy
    const cards = await page.locator("#stage-cards li").allTextContents();
    expect(cards.join(" ")).toMatch(
      /Handshake.*Pre-copy rounds.*Pause.*Post-copy.*Commit.*point of no return.*Activation/,
    );
    expect(await page.getAttribute('#stage-cards li[data-stage="probe"]', "data-state")).toBe("unused");
    // mid-run the destination holds part of the guest: both maps show pages here and not here
    const [absent] = await mapColors(page, "dest-map", [color(DEST_STYLES, "not here yet")]);
    expect(absent).toBeGreaterThan(0);
    await page.waitForSelector("body[data-status=completed], body[data-status=failed], body[data-status=aborted]", {
      timeout: 60_000,
    });
    await checkCompleted(page, errors, "precopy", 4096);
    await checkTimeline(page, "precopy");
    await checkMaps(page);
    expect(await page.locator("#decisions li").count()).toBeGreaterThan(1);
    expect(parseInt((await field(page, "ram.dirty-sync-count"))!, 10)).toBeGreaterThan(2);
    await page.screenshot({ path: join(shots, "precopy.png"), fullPage: true });
    await page.close();
  });

  it("step mode holds after each round: one more round per click, then the pause", async () => {
    const { page, errors } = await open("?rate=1500&bandwidth=4&size=4096&step-mode=1");
    await page.click("#start");
    let rounds = 0;
    const holds: string[] = [];
    for (let i = 0; i < 40; i++) {
      // the next hold (body[data-holds] counts them) or the end of the run
      const state = await page.waitForFunction(
        (seen) =>
          Number(document.body.dataset.holds ?? 0) > seen && document.body.dataset.hold
            ? document.body.dataset.hold
            : document.body.dataset.status !== "running"
              ? `end:${document.body.dataset.status}`
              : "",
        holds.length,
        { timeout: 30_000, polling: 50 },
      );
      const hold = (await state.jsonValue()) as string;
      if (hold.startsWith("end")) {
        expect(hold).toBe("end:completed");
        break;
      }
      holds.push(hold);
      const now = Number(await page.getAttribute("#timeline", "data-rounds"));
      // a round hold comes one round after the previous hold; the pause hold after none
      expect(now).toBe(hold === "round" ? rounds + 1 : rounds);
      rounds = now;
      expect(await page.isEnabled("#step")).toBe(true);
      expect(await page.getAttribute("#stage", "data-phase")).toBe(`held-${hold}`);
      if (i === 0) await page.screenshot({ path: join(shots, "step.png"), fullPage: true });
      // held means held: nothing moves until the click
      const sent = await page.getAttribute("#live", "data-transferred");
      await page.waitForTimeout(300);
      expect(Number(await page.getAttribute("#timeline", "data-rounds"))).toBe(rounds);
      expect(await page.getAttribute("#live", "data-transferred")).toBe(sent);
      await page.click("#step");
    }
    expect(holds.filter((h) => h === "round").length).toBeGreaterThanOrEqual(2);
    expect(holds.at(-1)).toBe("pause");
    expect(holds.filter((h) => h === "pause")).toHaveLength(1);
    expect((await phases(page)).filter((p) => p === "round")).toHaveLength(rounds);
    expect(await page.getAttribute("#digest", "data-verified")).toBe("true");
    // the held time is not downtime: the engine's clock stood still meanwhile
    expect(parseFloat((await field(page, "downtime"))!)).toBeLessThan(2000);
    expect(errors).toEqual([]);
    await page.close();
  });

  it("auto mode measures the guest, picks a mode and shows the measured inputs", async () => {
    const { page, errors } = await open(FAST);
    await migrate(page, { mode: "auto", size: "4096", bandwidth: "32" });
    const chosen = (await field(page, "mode"))!;
    expect(["precopy", "hybrid", "postcopy", "stop-and-copy"]).toContain(chosen);
    await checkCompleted(page, errors, chosen, 4096);
    expect(await page.textContent("#status")).toContain(`auto → ${chosen}`);
    expect(await page.locator("#decisions").textContent()).toMatch(/auto: /);
    expect((await phases(page))[0]).toBe("probe");
    expect(await page.isVisible("#auto-inputs")).toBe(true);
    const input = (name: string) => page.textContent(`#auto-inputs tr[data-input="${name}"] td:nth-child(2)`);
    // the guest writes 3000 pages/s: the probe sees a rate and a working set
    expect(parseInt((await input("dirty rate D"))!.replace(/,/g, ""), 10)).toBeGreaterThan(0);
    expect(parseInt((await input("working set W"))!.replace(/,/g, ""), 10)).toBeGreaterThan(0);
    expect(await input("bandwidth B")).toBe(`${(32 * 2 ** 20) / 4096} pages/s`.replace("8192", "8,192"));
    // the guest writes throughout the probe: every mode is predicted from its replay
    for (const m of ["precopy", "hybrid", "postcopy"])
      expect(await input(`${m} predicted`)).toMatch(/^total [\d,]+ ms · downtime [\d,]+ ms · stalls [\d,]+ ms$/);
    expect(await page.textContent("#auto-inputs .rule")).toContain(chosen);
    await page.screenshot({ path: join(shots, "auto.png"), fullPage: true });
    await page.close();
  });

  it("compares the modes side by side on the same guest", async () => {
    const { page, errors } = await open(`${FAST}&size=1024&bandwidth=16`);
    await page.click("#compare");
    await page.waitForSelector("body[data-compare=done], body[data-compare=stopped]", { timeout: 90_000 });
    expect(await page.getAttribute("body", "data-compare")).toBe("done");
    const rows = await page.evaluate(() =>
      Array.from(document.querySelectorAll<HTMLElement>("#compare-table tr[data-mode]"), (tr) => ({
        mode: tr.dataset.mode,
        pending: tr.dataset.pending ?? null,
        error: tr.dataset.error ?? null,
        values: Object.fromEntries(
          Array.from(tr.querySelectorAll<HTMLElement>("td[data-col]"), (td) => [
            td.dataset.col,
            Number(td.dataset.value),
          ]),
        ),
        digest: tr.lastElementChild?.textContent,
      })),
    );
    expect(rows.map((r) => r.mode)).toEqual(["precopy", "postcopy", "hybrid", "stop-and-copy"]);
    for (const r of rows) {
      expect(r.pending).toBeNull();
      expect(r.error).toBeNull();
      expect(r.digest).toBe("✔ verified");
      expect(r.values.total).toBeGreaterThan(0);
      expect(r.values.downtime).toBeGreaterThan(0);
      expect(r.values.transferred).toBeGreaterThan(0);
      expect(r.values.pages).toBeGreaterThanOrEqual(1024);
    }
    const by = Object.fromEntries(rows.map((r) => [r.mode, r.values]));
    expect(by.precopy.rounds).toBeGreaterThanOrEqual(1);
    expect(by.postcopy.rounds).toBe(0);
    expect(by["stop-and-copy"].rounds).toBe(0);
    expect(by["stop-and-copy"].faults).toBe(0);
    expect(by.precopy.faults).toBe(0);
    // the page shows the last run (stop-and-copy) when the comparison is over
    expect(await page.textContent("#status")).toMatch(/^completed: stop-and-copy/);
    expect(errors).toEqual([]);
    await page.screenshot({ path: join(shots, "compare.png"), fullPage: true });
    await page.close();
  });

  it("replays the real recording (redis window) in pre-copy", async () => {
    const { page, errors } = await open(FAST);
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
    const { page, errors } = await open("?size=16384&bandwidth=4");
    await page.selectOption("#mode", "precopy");
    await page.click("#start");
    // mid-run: the first round is on the wire and the map and totals are live
    await page.waitForFunction(() => Number(document.getElementById("live")?.dataset.pages ?? 0) > 0, null, {
      timeout: 15_000,
    });
    await page.click("#stop");
    await page.waitForSelector("body[data-status=aborted]", { timeout: 15_000 });
    // Stop cancels through the engine (migrate's AbortSignal): aborted before the decision, said so
    expect(await page.textContent("#status")).toMatch(/^aborted: migration aborted: CANCELLED/);
    expect(await field(page, "status")).toBe("aborted");
    expect(await page.getAttribute("#stage", "data-phase")).toBe("aborted");
    expect(await page.getAttribute("#timeline", "data-outcome")).toBe("aborted");
    expect(await page.isEnabled("#start")).toBe(true);
    expect(errors).toEqual([]);
    await page.close();
  });

  it("falls back to the main thread without a Worker (?main-thread)", async () => {
    const { page, errors } = await open(`${FAST}&main-thread`);
    expect(await page.getAttribute("body", "data-guest")).toBe("main-thread");
    await migrate(page, { mode: "precopy", size: "1024", bandwidth: "16" });
    await checkCompleted(page, errors, "precopy", 1024);
    await page.close();
  });
});
