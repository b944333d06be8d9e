// `simulate` and `compare` as a user sees them: the printed report and table, and the HTML
// file they write (run in-process on small guests, from the sources).
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { compareCommand } from "../../src/cli/commands/compare.js";
import { simulateCommand } from "../../src/cli/commands/simulate.js";
import { LOG_RATIO } from "../../src/cli/chart/scale.js";

const tmp = mkdtempSync(join(tmpdir(), "pagewire-report-"));
const LONG_DECIMALS = /\d\.\d{4,}/;

async function capture(run: () => Promise<number>): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void lines.push(a.join(" ")));
  vi.spyOn(console, "error").mockImplementation(() => {});
  try {
    return { code: await run(), out: lines.join("\n") };
  } finally {
    log.mockRestore();
  }
}

afterEach(() => vi.restoreAllMocks());

/** The text of the SVG chart whose aria-label starts with `title`. */
function svgOf(html: string, title: string): string {
  const at = html.indexOf(`aria-label="${title}`);
  expect(at, title).toBeGreaterThan(0);
  return html.slice(at, html.indexOf("</svg>", at));
}

describe("pagewire simulate", () => {
  it("prints rounded figures with units, states where the HTML report went, and draws limit and markers", async () => {
    const file = join(tmp, "sim.html");
    const { code, out } = await capture(() =>
      simulateCommand.run(["--guest-size", "16MiB", "--bandwidth", "100MiB/s", "--html", file]),
    );
    expect(code).toBe(0);
    expect(out).not.toMatch(LONG_DECIMALS);
    expect(out).toMatch(/^stopped-by +qemu rule$/m);
    expect(out).toMatch(/^downtime +\d+\.\d ms$/m);
    expect(out).toMatch(/^round \d+ {2}termination: stop \(qemu rule\) — expected downtime [\d.]+ ms ≤ limit 300 ms/m);
    expect(out).not.toMatch(/\{"/);
    expect(out).toContain(`HTML report: ${file}`);
    const html = readFileSync(file, "utf8");
    expect(html).not.toMatch(LONG_DECIMALS);
    expect(html).toMatch(/<td class="w">stopped by<\/td><td class="w">qemu rule<\/td>/);
    expect(svgOf(html, "Downtime")).toContain('data-role="limit" data-value="300"');
    for (const title of ["Pages per round by encoding", "Bytes per round", "Cumulative bytes over time"])
      expect(svgOf(html, title)).toContain('data-role="marker" data-kind="pause"');
    expect(svgOf(html, "Cumulative bytes over time")).toContain('data-role="marker" data-kind="round"');
  });
});

describe("pagewire compare", () => {
  it("prints an aligned table with units and a stopped-by column; the HTML has it too, and a log axis when cases differ 10×", async () => {
    const file = join(tmp, "cmp.html");
    const args = ["--preset", "qemu,pagewire", "--workload", "working-set", "--guest-size", "16MiB"];
    const { code, out } = await capture(() =>
      compareCommand.run([...args, "--bandwidth", "10MiB/s,100MiB/s", "--html", file]),
    );
    expect(code).toBe(0);
    expect(out).not.toMatch(LONG_DECIMALS);
    const lines = out.split("\n");
    const table = lines.slice(
      0,
      lines.findIndex((l) => l.startsWith("seed ")),
    );
    expect(table).toHaveLength(2 + 4);
    expect(new Set(table.map((l) => l.length)).size).toBe(1);
    const stoppedAt = table[0].indexOf("stopped by");
    expect(stoppedAt).toBeGreaterThan(0);
    for (const row of table.slice(2)) expect(row.slice(stoppedAt)).toMatch(/^(qemu rule|force-stop|round cap)/);
    expect(table[1]).toMatch(/ms +ms +ms/);
    const html = readFileSync(file, "utf8");
    expect(html).toContain("<th>stopped by</th>");
    expect(svgOf(html, "Downtime")).toContain('data-role="limit" data-value="300"');
    // total time per case: the log axis appears exactly when the cases' maxima differ by LOG_RATIO
    const { out: json } = await capture(() =>
      compareCommand.run([...args, "--bandwidth", "10MiB/s,100MiB/s", "--json"]),
    );
    const rows = JSON.parse(json).rows as Array<{ bandwidth: number; "total-time-ms": number }>;
    const maxima = [10, 100].map((m) =>
      Math.max(...rows.filter((r) => r.bandwidth === m * 2 ** 20).map((r) => r["total-time-ms"])),
    );
    const expectLog = Math.max(...maxima) / Math.min(...maxima) >= LOG_RATIO;
    expect(svgOf(html, "Total time")).toContain(`data-scale="${expectLog ? "log" : "linear"}"`);
  });
});

describe("npm start", () => {
  it("runs simulate with an HTML report, and README names the file", () => {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
    const file = pkg.scripts.start.match(/ simulate .*--html (\S+)/)?.[1];
    expect(file).toBeDefined();
    expect(readFileSync(new URL("../../README.md", import.meta.url), "utf8")).toContain(file);
  });
});
