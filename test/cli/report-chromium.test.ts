// The charts' x labels as Chromium lays them out: the real outline of every label (its
// bounding box in its own rotated frame, mapped to the chart) overlaps no other and stays
// inside the chart, and no label is wider than the width the layout reserved for it.
// Runs when /usr/bin/chromium exists (always with CI set), like test/demo/chromium.test.ts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { barChart } from "../../src/cli/chart/bar-chart.js";
import { boxesOverlap, textWidth, type Point } from "../../src/cli/chart/label-layout.js";
import { lineChart } from "../../src/cli/chart/line-chart.js";
import { page } from "../../src/cli/html-report.js";
import { chromiumTestRuns, launchChromium } from "../support/chromium.js";

interface Drawn {
  chart: string;
  width: number;
  height: number;
  labels: Array<{ text: string; corners: Point[]; lines: Array<{ text: string; length: number }> }>;
}

function charts(): string[] {
  const guests = [
    "trace:idle",
    "trace:redis",
    "trace:dirtier",
    "working-set (256\u00a0MiB)",
    "net-ring (1.00\u00a0GiB)",
  ];
  const out: string[] = [];
  for (const n of [2, 6, 12, 24, 48]) {
    const categories = Array.from(
      { length: n },
      (_, i) => `${guests[i % guests.length]} @ ${[10, 100, 1000][i % 3]}\u00a0MiB/s`,
    );
    out.push(
      barChart({
        title: `cases ${n}`,
        categories,
        series: ["qemu", "pagewire", "pagewire-history"].map((name, j) => ({
          name,
          values: categories.map((_, i) => 10 + ((i * 37 + j * 11) % 90)),
        })),
        yLabel: "ms",
      }).svg,
    );
  }
  const rounds = Array.from({ length: 31 }, (_, i) => (i === 30 ? "30 stop-and-copy" : String(i)));
  out.push(
    barChart({
      title: "rounds 31",
      categories: rounds,
      series: [{ name: "bytes", values: rounds.map((_, i) => 100 / (i + 1)) }],
      yLabel: "MiB",
      xLabel: "round",
    }).svg,
  );
  out.push(
    lineChart({
      title: "line",
      lines: [
        {
          name: "a",
          points: [
            [0, 0],
            [123.4, 5678],
          ],
        },
      ],
      xLabel: "virtual seconds",
      yLabel: "MiB",
    }).svg,
  );
  return out;
}

describe.runIf(chromiumTestRuns("test/cli/report-chromium.test.ts"))("chart labels in headless Chromium", () => {
  let browser: import("playwright-core").Browser;

  beforeAll(async () => {
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
  });

  it("never overlap, stay inside their chart, and are no wider than reserved", async () => {
    const p = await browser.newPage();
    await p.setContent(page("labels", charts().join("\n")));
    const drawn: Drawn[] = await p.evaluate(() =>
      Array.from(document.querySelectorAll("svg")).map((svg) => ({
        chart: svg.getAttribute("aria-label") ?? "",
        width: svg.viewBox.baseVal.width,
        height: svg.viewBox.baseVal.height,
        labels: (Array.from(svg.querySelectorAll("text.xl")) as SVGTextElement[]).map((t) => {
          const b = t.getBBox();
          // the label's frame relative to the svg's own: rotation and translation
          const m = svg.getScreenCTM()!.inverse().multiply(t.getScreenCTM()!);
          const corners = [
            [b.x, b.y],
            [b.x + b.width, b.y],
            [b.x + b.width, b.y + b.height],
            [b.x, b.y + b.height],
          ].map(([x, y]) => {
            const q = new DOMPoint(x, y).matrixTransform(m);
            return [q.x, q.y] as [number, number];
          });
          const spans = Array.from(t.querySelectorAll("tspan")) as SVGTSpanElement[];
          const lines = (spans.length ? spans : [t]).map((s) => ({
            text: s.textContent ?? "",
            length: s.getComputedTextLength(),
          }));
          return { text: t.textContent ?? "", corners, lines };
        }),
      })),
    );
    await p.close();
    expect(drawn).toHaveLength(7);
    for (const chart of drawn) {
      expect(chart.labels.length, chart.chart).toBeGreaterThan(0);
      for (let i = 0; i < chart.labels.length; i++) {
        const a = chart.labels[i];
        for (const line of a.lines)
          expect(line.length, `${chart.chart}: "${line.text}"`).toBeLessThanOrEqual(textWidth(line.text, 11) + 0.5);
        for (const [x, y] of a.corners) {
          expect(x, `${chart.chart}: ${a.text}`).toBeGreaterThanOrEqual(-0.5);
          expect(x, `${chart.chart}: ${a.text}`).toBeLessThanOrEqual(chart.width + 0.5);
          expect(y, `${chart.chart}: ${a.text}`).toBeLessThanOrEqual(chart.height + 0.5);
        }
        for (let j = i + 1; j < chart.labels.length; j++)
          expect(
            boxesOverlap(a.corners, chart.labels[j].corners),
            `${chart.chart}: ${a.text} × ${chart.labels[j].text}`,
          ).toBe(false);
      }
    }
  }, 60_000);
});
