import { describe, expect, it } from "vitest";
import { parseDuration, parseRate, parseSize } from "../../src/cli/units.js";

const usage = (message: RegExp) => expect.objectContaining({ code: "USAGE", message: expect.stringMatching(message) });

describe("command-line quantities", () => {
  it("reads sizes in IEC and SI units", () => {
    expect(parseSize("1GiB", "x")).toBe(2 ** 30);
    expect(parseSize("128MiB", "x")).toBe(2 ** 27);
    expect(parseSize("64KiB", "x")).toBe(65536);
    expect(parseSize("1.5GiB", "x")).toBe(1.5 * 2 ** 30);
    expect(parseSize("1GB", "x")).toBe(1e9);
    expect(parseSize("256MB", "x")).toBe(256e6);
    expect(parseSize("4kB", "x")).toBe(4000);
    expect(parseSize("4096B", "x")).toBe(4096);
    expect(parseSize("256 MiB", "x")).toBe(2 ** 28);
    expect(parseSize("0", "x")).toBe(0);
  });

  it("reads rates in bytes (IEC, SI) and bits (SI)", () => {
    expect(parseRate("100MiB/s", "x")).toBe(100 * 2 ** 20);
    expect(parseRate("125MB/s", "x")).toBe(125e6);
    expect(parseRate("1Gbit", "x")).toBe(125e6);
    expect(parseRate("800Mbit/s", "x")).toBe(1e8);
    expect(parseRate("100Mbps", "x")).toBe(12.5e6);
    expect(parseRate("1.5GiB/s", "x")).toBe(1.5 * 2 ** 30);
    expect(parseRate("10 MiB/s", "x")).toBe(10 * 2 ** 20);
  });

  it("reads durations", () => {
    expect(parseDuration("300ms", "x")).toBeCloseTo(0.3);
    expect(parseDuration("2s", "x")).toBe(2);
    expect(parseDuration("1.5min", "x")).toBe(90);
    expect(parseDuration("250us", "x")).toBeCloseTo(0.00025);
    expect(parseDuration("0", "x")).toBe(0);
  });

  it("refuses a bare number with the forms it takes", () => {
    expect(() => parseRate("100", "--bandwidth")).toThrow(
      usage(/^--bandwidth 100: give a unit, e\.g\. 100MiB\/s \(IEC, 2\^20\) or 100MB\/s \(SI, 10\^6\) or 800Mbit$/),
    );
    expect(() => parseSize("4096", "--max-memory")).toThrow(usage(/^--max-memory 4096: give a unit, e\.g\. 4096MiB/));
    expect(() => parseDuration("300", "--downtime-limit")).toThrow(
      usage(/^--downtime-limit 300: give a unit, e\.g\. 300ms or 300s$/),
    );
    // 0 has no unit to get wrong, except as a rate
    expect(() => parseRate("0", "--bandwidth")).toThrow(usage(/give a unit/));
    expect(() => parseRate("0MB/s", "--bandwidth")).toThrow(usage(/more than 0/));
  });

  it("refuses ambiguous units, naming both readings", () => {
    expect(() => parseSize("1G", "--guest-size")).toThrow(
      usage(/ambiguous unit 'G': say 1GiB \(IEC, 2\^30\) or 1GB \(SI, 10\^9\)/),
    );
    expect(() => parseSize("512M", "--guest-size")).toThrow(usage(/512MiB .* or 512MB/));
    expect(() => parseRate("100M", "--bandwidth")).toThrow(
      usage(/ambiguous unit 'M': say 100MiB\/s .* 100MB\/s .* 100Mbit/),
    );
    expect(() => parseRate("100Mb/s", "--bandwidth")).toThrow(usage(/bits or bytes/));
    expect(() => parseSize("1Gb", "--guest-size")).toThrow(usage(/bits or bytes/));
    expect(() => parseRate("100MB", "--bandwidth")).toThrow(usage(/per second: 100MB\/s/));
  });

  it("refuses malformed values as usage errors", () => {
    for (const f of [
      () => parseSize("lots", "--guest-size"),
      () => parseSize("1.5B", "--guest-size"),
      () => parseSize("1GiB/s", "--guest-size"),
      () => parseRate("fast", "--bandwidth"),
      () => parseRate("1e8", "--bandwidth"),
      () => parseRate("100MiB/h", "--bandwidth"),
      () => parseDuration("soon", "--latency"),
      () => parseDuration("2h", "--latency"),
      () => parseDuration("-1s", "--latency"),
    ]) {
      expect(f).toThrow(expect.objectContaining({ code: "USAGE" }));
    }
  });
});
