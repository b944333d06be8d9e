// The built CLI (dist/cli/main.js, built by `npm test` before vitest runs).
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const MAIN = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { encoding: "utf8" });
const tmp = mkdtempSync(join(tmpdir(), "pagewire-cli-"));

function expectSelfContained(html: string) {
  expect(html).toMatch(/^<!doctype html>/);
  expect(html).toContain("<svg");
  expect(html).not.toMatch(/<script|<link|<img|<iframe|@import|url\(|src=|href=/i);
  // the only URL is the SVG namespace
  expect(html.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, "")).not.toMatch(/https?:/);
}

describe("pagewire CLI", () => {
  it("usage errors exit 2 with one line", () => {
    for (const args of [
      ["simulate", "--bogus"],
      ["simulate", "--workload", "nope"],
      ["simulate", "--bandwidth", "fast"],
      ["compare", "--preset", "nope"],
      ["record"],
      ["bench", "nope"],
      ["nope"],
    ]) {
      const r = run(...args);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.stderr.trim().split("\n"), args.join(" ")).toHaveLength(1);
    }
  });

  it("failures exit 1 with one line", () => {
    const r = run(
      "record",
      "--memory",
      join(tmp, "missing.img"),
      "--interval",
      "1ms",
      "--count",
      "1",
      "--out",
      join(tmp, "x"),
    );
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    const t = run("simulate", "--trace", join(tmp, "no-such-recording"));
    expect(t.status).toBe(1);
    expect(t.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("each command refuses a bare number with the units it takes, and old flag names with the new one", () => {
    const hint = (flag: string, bare: string) =>
      new RegExp(
        `^pagewire: ${flag} ${bare}: give a unit, e\\.g\\. ${bare}(MiB/s \\(IEC, 2\\^20\\) or ${bare}MB/s \\(SI, 10\\^6\\) or ${Number(bare) * 8}Mbit|MiB \\(IEC, 2\\^20\\) or ${bare}MB \\(SI, 10\\^6\\) or ${bare}B \\(bytes\\)|ms or ${bare}s)\n$`,
      );
    for (const [args, re] of [
      [["simulate", "--bandwidth", "100"], hint("--bandwidth", "100")],
      [["compare", "--bandwidth", "10MiB/s,100"], hint("--bandwidth", "100")],
      [["send", "--bandwidth", "100"], hint("--bandwidth", "100")],
      [["migrate-qemu", "--bandwidth", "100"], hint("--bandwidth", "100")],
      [["qemu-proxy", "send", "--bandwidth", "100"], hint("--bandwidth", "100")],
      [["simulate", "--guest-size", "512"], hint("--guest-size", "512")],
      [["receive", "--max-memory", "64"], hint("--max-memory", "64")],
      [["send", "--downtime-limit", "300"], hint("--downtime-limit", "300")],
      [["record", "--interval", "200"], hint("--interval", "200")],
      [["simulate", "--guest-size", "1G"], /ambiguous unit 'G': say 1GiB \(IEC, 2\^30\) or 1GB \(SI, 10\^9\)/],
      [["send", "--downtime", "300"], /^pagewire: send: --downtime was renamed: use --downtime-limit, with a unit/],
      [["migrate-qemu", "--policy", "vanilla"], /^pagewire: migrate-qemu: --policy was renamed: use --selection\n$/],
      [["compare", "--bandwidths", "1Gbit"], /^pagewire: compare: --bandwidths was renamed: use --bandwidth/],
    ] as const) {
      const r = run(...args);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toMatch(re);
    }
  });

  it("--help on every command exits 0", () => {
    for (const c of [
      "simulate",
      "compare",
      "bench",
      "record",
      "selfcheck",
      "send",
      "receive",
      "resolve",
      "migrate-qemu",
      "qemu-proxy",
    ]) {
      const r = run(c, "--help");
      expect(r.status, c).toBe(0);
      expect(r.stdout).toContain(`pagewire ${c}`);
    }
  });

  it("simulate: --json parses and repeats with one seed; --html is self-contained", () => {
    const args = [
      "simulate",
      "--guest-size",
      "16MiB",
      "--dirty-rate",
      "3000",
      "--bandwidth",
      "100Mbit",
      "--seed",
      "5",
      "--json",
    ];
    const a = JSON.parse(
      execFileSync(process.execPath, [MAIN, ...args, "--html", join(tmp, "s.html")], { encoding: "utf8" }),
    );
    const b = JSON.parse(execFileSync(process.execPath, [MAIN, ...args], { encoding: "utf8" }));
    expect(a).toEqual(b);
    expect(a.verified).toBe(true);
    expect(a.report.status).toBe("completed");
    expect(a.report.rounds.length).toBeGreaterThan(1);
    expect(a.scenario.seed).toBe(5);
    const html = readFileSync(join(tmp, "s.html"), "utf8");
    expectSelfContained(html);
    for (const title of ["Bytes per round", "Pages per round", "Cumulative bytes over time"])
      expect(html).toContain(title);
  });

  it("compare: table, --json and --html with a chart per metric", () => {
    const r = run(
      "compare",
      "--workload",
      "idle,hot-cold",
      "--guest-size",
      "8MiB",
      "--bandwidth",
      "50MiB/s",
      "--preset",
      "qemu,pagewire",
      "--json",
      "--html",
      join(tmp, "c.html"),
    );
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.rows).toHaveLength(4);
    expect(j.rows.every((x: { verified: boolean }) => x.verified)).toBe(true);
    // each run's full report, in the order of the rows
    expect(j.reports).toHaveLength(4);
    j.reports.forEach((rep: { status: string; rounds: unknown[] }, i: number) => {
      expect(rep.status).toBe(j.rows[i].status);
      expect(rep.rounds).toHaveLength(j.rows[i].rounds);
    });
    const html = readFileSync(join(tmp, "c.html"), "utf8");
    expectSelfContained(html);
    for (const title of ["MiB sent", "Total time", "Downtime", "Rounds"]) expect(html).toContain(title);
    const t = run("compare", "--workload", "cpu", "--guest-size", "4MiB", "--bandwidth", "10MiB/s", "--preset", "qemu");
    expect(t.status).toBe(0);
    expect(t.stdout).toMatch(/cpu \(4 MiB\)\s+10 MiB\/s\s+qemu/);
  });

  it("record writes a trace that simulate replays", () => {
    const ram = new Uint8Array(256 * 4096);
    for (let i = 0; i < ram.length; i += 4099) ram[i] = 1 + (i % 250);
    writeFileSync(join(tmp, "ram.img"), ram);
    const r = run(
      "record",
      "--memory",
      join(tmp, "ram.img"),
      "--interval",
      "1ms",
      "--count",
      "2",
      "--out",
      join(tmp, "rec"),
      "--json",
    );
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).intervals).toHaveLength(2);
    const s = run("simulate", "--trace", join(tmp, "rec"), "--bandwidth", "10MiB/s", "--json");
    expect(s.status, s.stderr).toBe(0);
    expect(JSON.parse(s.stdout).scenario.guest).toBe("trace:rec");
  });

  it("bench --list names the suites", () => {
    const r = run("bench", "--list");
    expect(r.status).toBe(0);
    expect(r.stdout.split("\n")).toContain("bitmap");
  });
});
