import { describe, expect, it } from "vitest";
import { parseDuration, parseRate, parseSize } from "../../src/cli/units.js";

describe("command-line quantities", () => {
  it("reads sizes, rates and durations", () => {
    expect(parseSize("1GiB", "x")).toBe(2 ** 30);
    expect(parseSize("128MiB", "x")).toBe(2 ** 27);
    expect(parseSize("4096", "x")).toBe(4096);
    expect(parseRate("1Gbit", "x")).toBe(125e6);
    expect(parseRate("100Mbps", "x")).toBe(12.5e6);
    expect(parseRate("100MiB/s", "x")).toBe(100 * 2 ** 20);
    expect(parseRate("125MB/s", "x")).toBe(125e6);
    expect(parseRate("1e8", "x")).toBe(1e8);
    expect(parseDuration("300ms", "x")).toBeCloseTo(0.3);
    expect(parseDuration("2s", "x")).toBe(2);
  });
  it("rejects malformed values as usage errors", () => {
    for (const f of [
      () => parseSize("lots", "--guest-size"),
      () => parseRate("fast", "--bandwidth"),
      () => parseRate("0", "--bandwidth"),
      () => parseDuration("soon", "--latency"),
    ]) {
      expect(f).toThrow(expect.objectContaining({ code: "USAGE" }));
    }
  });
});
