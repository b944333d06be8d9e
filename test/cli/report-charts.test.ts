// The HTML report's charts, checked on what they draw (no screenshot): label outlines never
// overlap, axes end just above the data, the downtime limit and the round / pause markers
// are drawn, and groups 10× apart get a log axis.
import { describe, expect, it } from "vitest";
import { barChart } from "../../src/cli/chart/bar-chart.js";
import { boxesOverlap, layoutXLabels, textWidth, type Point } from "../../src/cli/chart/label-layout.js";
import { lineChart } from "../../src/cli/chart/line-chart.js";
import { migrationCharts } from "../../src/cli/chart/migration-charts.js";
import { chooseScale, linearScale, logScale } from "../../src/cli/chart/scale.js";
import { MigrationReport, type RoundRow } from "../../src/engine/report.js";
import { rng } from "../support/random.js";

const rect = (x: number, y: number, w: number, h: number): Point[] => [
  [x, y],
  [x + w, y],
  [x + w, y + h],
  [x, y + h],
];

/** Every pair of shown label outlines, not only neighbours. */
function overlappingPairs(labels: Array<{ shown: boolean; box: Point[]; text: string }>): string[] {
  const shown = labels.filter((l) => l.shown);
  const bad: string[] = [];
  for (let i = 0; i < shown.length; i++)
    for (let j = i + 1; j < shown.length; j++)
      if (boxesOverlap(shown[i].box, shown[j].box)) bad.push(`${shown[i].text} × ${shown[j].text}`);
  return bad;
}

function caseLabels(n: number, rand: () => number): string[] {
  const guests = [
    "trace:idle",
    "trace:redis",
    "trace:dirtier",
    "working-set (256\u00a0MiB)",
    "net-ring (1.00\u00a0GiB)",
  ];
  return Array.from(
    { length: n },
    (_, i) => `${guests[Math.floor(rand() * guests.length)]} @ ${[10, 100, 1000][i % 3]}\u00a0MiB/s`,
  );
}

describe("overlap of outlines", () => {
  it("tells overlapping rectangles and rotated outlines from separate ones", () => {
    expect(boxesOverlap(rect(0, 0, 10, 10), rect(5, 5, 10, 10))).toBe(true);
    expect(boxesOverlap(rect(0, 0, 10, 10), rect(10, 0, 10, 10))).toBe(false); // touching edges
    expect(boxesOverlap(rect(0, 0, 10, 10), rect(11, 0, 10, 10))).toBe(false);
    // two thin bars rotated 45°, side by side: their bounding boxes overlap, they do not
    const diag = (dx: number): Point[] => [
      [dx, 0],
      [dx + 4, 0],
      [dx + 104, 100],
      [dx + 100, 100],
    ];
    expect(boxesOverlap(diag(0), diag(10))).toBe(false);
    expect(boxesOverlap(diag(0), diag(2))).toBe(true);
  });
});

describe("x labels", () => {
  const rand = rng(7);
  for (const n of [1, 3, 6, 12, 24, 60, 150]) {
    it(`${n} case labels: no two outlines overlap, all inside the chart, below the plot`, () => {
      const categories = caseLabels(n, rand);
      const { svg, layout } = barChart({
        title: "t",
        categories,
        series: [{ name: "a", values: categories.map(() => 1 + rand() * 100) }],
        yLabel: "ms",
      });
      const labels = layout.labels.labels;
      expect(overlappingPairs(labels)).toEqual([]);
      const axisY = 36 + 210;
      for (const l of labels.filter((x) => x.shown)) {
        for (const [x, y] of l.box) {
          expect(x).toBeGreaterThanOrEqual(0);
          expect(x).toBeLessThanOrEqual(layout.width);
          expect(y).toBeGreaterThanOrEqual(axisY);
          expect(y).toBeLessThanOrEqual(layout.height);
        }
        // the outline is at least as long as the text's estimated width
        const w = Math.max(...l.lines.map((line) => textWidth(line, layout.labels.fontSize)));
        const [a, b] = l.box;
        expect(Math.hypot(b[0] - a[0], b[1] - a[1])).toBeGreaterThanOrEqual(w - 1e-6);
        for (const line of l.lines) expect(svg).toContain(line.replace(/&/g, "&amp;"));
      }
      // thinned labels keep a regular stride and show at least the first one
      const shown = labels.map((l, i) => (l.shown ? i : -1)).filter((i) => i >= 0);
      expect(shown[0]).toBe(0);
      if (n <= 12) expect(shown.length).toBe(n);
    });
  }

  it("wraps a label on spaces, never inside a number and its unit", () => {
    const layout = layoutXLabels(["trace:redis @ 100\u00a0MiB/s"], [100], 90, 0);
    const l = layout.labels[0];
    expect(l.angle).toBe(0);
    expect(l.lines.length).toBeGreaterThan(1);
    expect(l.lines.some((line) => line.includes("100\u00a0MiB/s"))).toBe(true);
  });

  it("breaks a word too wide for its slot after a hyphen", () => {
    const l = layoutXLabels(["12 stop-and-copy"], [100], 70, 0).labels[0];
    expect(l.angle).toBe(0);
    expect(l.lines).toEqual(["12 stop-", "and-copy"]);
    for (const line of l.lines) expect(textWidth(line, 11)).toBeLessThanOrEqual(66);
  });

  it("rotates labels too long to wrap, and the outline follows the rotation", () => {
    const layout = layoutXLabels(["a-very-long-configuration-name", "another-long-configuration"], [100, 130], 30, 0);
    for (const l of layout.labels) {
      expect(l.angle).not.toBe(0);
      const [a, b] = l.box;
      expect(Math.abs(b[1] - a[1])).toBeGreaterThan(0); // not an axis-aligned box
    }
    expect(overlappingPairs(layout.labels)).toEqual([]);
  });
});

describe("axes", () => {
  const rand = rng(11);
  it("end on a nice tick at or above the data maximum, below 1.5× it", () => {
    for (let i = 0; i < 2000; i++) {
      const max = 10 ** (rand() * 12 - 4) * (1 + rand());
      const lin = linearScale(max);
      expect(lin.max).toBeGreaterThanOrEqual(max);
      expect(lin.max).toBeLessThan(1.5 * max);
      expect(lin.ticks[lin.ticks.length - 1]).toBe(lin.max);
      expect(lin.ticks.length).toBeGreaterThanOrEqual(3);
      const log = logScale(max / (10 + rand() * 1000), max);
      expect(log.max).toBeGreaterThanOrEqual(max);
      expect(log.max).toBeLessThan(1.5 * max);
      expect(log.min).toBeLessThanOrEqual(max / 10);
    }
  });

  it("tick labels of a log axis do not crowd its top", () => {
    const s = logScale(90, 5500);
    const positions = s.ticks.map((t) => s.at(t) * 210);
    for (let i = 1; i < positions.length; i++) expect(positions[i] - positions[i - 1]).toBeGreaterThan(12);
  });

  it("a chart's y axis ends within 1.5× of its tallest bar (stacked: its tallest stack)", () => {
    const grouped = barChart({
      title: "t",
      categories: ["a", "b", "c"],
      series: [
        { name: "x", values: [3.7, 12.2, 8] },
        { name: "y", values: [1, 2, 3] },
      ],
      yLabel: "ms",
    });
    expect(grouped.layout.dataMax).toBe(12.2);
    expect(grouped.layout.y.max).toBeGreaterThanOrEqual(12.2);
    expect(grouped.layout.y.max).toBeLessThan(1.5 * 12.2);
    const stacked = barChart({
      title: "t",
      categories: ["a", "b"],
      series: [
        { name: "x", values: [300, 200] },
        { name: "y", values: [120, 90] },
      ],
      yLabel: "pages",
      stacked: true,
    });
    expect(stacked.layout.dataMax).toBe(420);
    expect(stacked.layout.y.max).toBeLessThan(1.5 * 420);
    expect(stacked.svg).toMatch(/data-max="(\d+)"/);
    expect(Number(stacked.svg.match(/data-max="([\d.]+)"/)![1])).toBe(stacked.layout.y.max);
  });

  it("turn logarithmic when groups differ by 10× or more, and only then", () => {
    expect(chooseScale([10, 100], [10, 100]).kind).toBe("log");
    expect(chooseScale([12, 110], [12, 110]).kind).toBe("linear");
    expect(chooseScale([0, 100], [0, 100]).kind).toBe("linear"); // a zero group is not a ratio
    const ms = (a: number, b: number) =>
      barChart({
        title: "Total time",
        categories: ["trace:redis @ 10\u00a0MiB/s", "trace:redis @ 100\u00a0MiB/s"],
        series: [
          { name: "qemu", values: [a, b] },
          { name: "pagewire", values: [a * 0.6, b * 0.5] },
        ],
        yLabel: "ms",
      });
    const wide = ms(5200, 480);
    expect(wide.layout.y.kind).toBe("log");
    expect(wide.svg).toContain('data-scale="log"');
    expect(wide.svg).toContain("(log scale)");
    const narrow = ms(900, 480);
    expect(narrow.layout.y.kind).toBe("linear");
    expect(narrow.svg).not.toContain("(log scale)");
  });
});

describe("stacked bars", () => {
  const spec = (first: number) => ({
    title: "Pages per round by encoding",
    categories: ["0", "1", "2 stop-and-copy"],
    series: [
      { name: "zero", values: [first * 0.25, 300, 1000] },
      { name: "lz", values: [first * 0.75, 900, 500] },
    ],
    yLabel: "pages",
    stacked: true,
    sharesWhenSpread: true,
  });
  const heights = (svg: string) =>
    [...svg.matchAll(/<rect [^>]*height="([\d.]+)" fill="[^"]*"><title>/g)].map((m) => Number(m[1]));

  it("keep values on a linear axis while totals are within 10×", () => {
    const c = barChart(spec(4000));
    expect(c.layout.bars).toBe("values");
    expect(c.layout.y.kind).toBe("linear");
    expect(c.layout.dataMax).toBe(4000);
  });

  it("turn into shares of each bar, with totals printed, when totals differ by 10× or more", () => {
    const c = barChart(spec(262144));
    expect(c.layout.bars).toBe("share");
    expect(c.layout.y.max).toBe(100);
    expect(c.svg).toContain("share of each bar&#39;s pages, %");
    const h = heights(c.svg);
    expect(h).toHaveLength(6);
    // every bar fills the plot, each segment in proportion to its value
    for (let bar = 0; bar < 3; bar++) expect(h[2 * bar] + h[2 * bar + 1]).toBeCloseTo(210, 0);
    expect(h[0] / h[1]).toBeCloseTo(1 / 3, 1);
    expect(h[4] / h[5]).toBeCloseTo(2, 1);
    for (const total of ["262.1k", "1200", "1500"]) expect(c.svg).toContain(`class="tot">${total}<`);
  });
});

describe("limit line and markers", () => {
  it("draws the downtime limit at its value, on the axis even above every bar", () => {
    const c = barChart({
      title: "Downtime",
      categories: ["a", "b"],
      series: [{ name: "x", values: [40, 120] }],
      yLabel: "ms",
      limits: [{ value: 300, label: "downtime limit 300 ms" }],
    });
    expect(c.layout.y.max).toBeGreaterThanOrEqual(300);
    const m = c.svg.match(/<g data-role="limit" data-value="300"><line [^>]*y1="([\d.]+)"/);
    expect(m).not.toBeNull();
    const y = Number(m![1]);
    expect(y).toBeCloseTo(36 + 210 * (1 - 300 / c.layout.y.max), 0);
    expect(c.svg).toContain("downtime limit 300 ms");
  });

  it("per-round charts mark the pause before the stop-and-copy round; the time chart marks each round start", () => {
    const report = new MigrationReport();
    report.setupTime = 2;
    report.downtime = 180;
    const row = (round: number, phase: string, dirtied: number, bytes: number, seconds: number): RoundRow => ({
      round,
      phase,
      dirtied,
      sent: dirtied,
      deferred: 0,
      skipped: 0,
      zero: 10,
      dedup: 0,
      xbzrle: 5,
      rle: 20,
      lz: 0,
      raw: dirtied - 35,
      bytes,
      seconds,
    });
    report.rounds.push(row(0, "precopy", 65536, 200 << 20, 2), row(1, "precopy", 9000, 30 << 20, 0.3));
    report.rounds.push(row(2, "precopy", 3000, 10 << 20, 0.1), row(3, "stop-and-copy", 1500, 5 << 20, 0.05));
    const timeline: Array<[number, number]> = [
      [0.002, 0],
      [2.4, 245 << 20],
    ];
    const charts = migrationCharts(report, timeline, 300);
    const byTitle = (t: string) => charts.find((c) => c.svg.includes(`aria-label="${t}`))!;
    for (const title of ["Pages per round by encoding", "Pages per round: dirtied", "Bytes per round", "Downtime"]) {
      const c = byTitle(title);
      expect(c, title).toBeDefined();
      const pause = c.layout.markers.filter((m) => m.kind === "pause");
      expect(pause, title).toHaveLength(1);
      expect(c.svg).toContain('data-role="marker" data-kind="pause"');
    }
    // the pause sits at the left edge of the stop-and-copy round's slot (4 rounds over the plot)
    const bytes = byTitle("Bytes per round");
    const slot = (720 - 64 - 16) / 4;
    expect(bytes.layout.markers[0].x).toBeCloseTo(64 + 3 * slot, 6);
    // one stacked bar per round: a rect per codec that has pages
    expect(byTitle("Pages per round by encoding").svg.match(/<rect [^>]*><title>/g)!.length).toBe(4 * 4);
    const downtime = byTitle("Downtime");
    expect(downtime.layout.limits).toEqual([{ value: 300, label: "downtime limit 300 ms" }]);
    expect(downtime.svg).toContain('data-role="limit"');
    const time = byTitle("Cumulative bytes");
    expect(time.layout.markers.map((m) => m.label)).toEqual(["r0", "r1", "r2", "pause"]);
    // round starts in virtual seconds: setup, then each round's length
    const at = [0, 2, 2.3, 2.4].map((t) => t + 0.002);
    const x0 = 64;
    const w = 720 - 64 - 16;
    time.layout.markers.forEach((m, i) => {
      expect(m.x).toBeCloseTo(x0 + (w * at[i]) / 2.5, 3); // axis 0 … 2.5 s
    });
  });

  it("line charts draw the limit and choose log axes for 10 and 100 MiB/s", () => {
    const c = lineChart({
      title: "Downtime vs bandwidth",
      lines: [
        {
          name: "qemu",
          points: [
            [10, 858],
            [100, 46],
          ],
        },
      ],
      xLabel: "bandwidth, MiB/s",
      yLabel: "downtime, ms",
      xScale: "auto",
      yScale: "auto",
      limits: [{ value: 300, label: "downtime limit 300 ms" }],
    });
    expect(c.svg).toContain('data-role="x-axis" data-scale="log"');
    expect(c.layout.y.kind).toBe("log");
    expect(c.svg).toContain('data-role="limit" data-value="300"');
    expect(overlappingPairs(c.layout.labels.labels)).toEqual([]);
  });
});
