// The option table against every command, in process: each command takes exactly the
// flags it declares, all from the table; a flag has one type, one unit and one meaning in
// every command; renamed flags are refused with their new name; help comes from the table.
import { describe, expect, it } from "vitest";
import type { FlagUse } from "../../src/cli/command.js";
import { COMMANDS } from "../../src/cli/commands/index.js";
import { FLAGS, type FlagName, RENAMED } from "../../src/cli/options.js";
import type { Command } from "../../src/cli/usage.js";

type Values = Record<string, unknown>;
const parse = (c: Command, argv: string[]) => c.parse(argv) as Values;
const declared = (c: Command) => Object.keys(c.flags) as FlagName[];
const usage = (message: RegExp) => expect.objectContaining({ code: "USAGE", message: expect.stringMatching(message) });
const byName = (name: string) => COMMANDS.find((c) => c.name === name)!;

/** A value each flag's type accepts. */
function sample(c: Command, name: FlagName): string[] {
  const flag = FLAGS[name];
  const use = (c.flags as Record<string, FlagUse>)[name];
  switch (flag.type) {
    case "bool":
      return [`--${name}`];
    case "size":
      return [`--${name}`, "1MiB"];
    case "rate":
      return [`--${name}`, "1MiB/s"];
    case "duration":
      return [`--${name}`, "1s"];
    case "count":
    case "number":
      return [`--${name}`, String("max" in flag ? Math.min(1, flag.max) : 1)];
    case "enum":
      return [`--${name}`, (use?.values ?? (flag as { values: () => readonly string[] }).values)()[0]];
    default:
      return [`--${name}`, "x"];
  }
}

/** What the sample parses to, in one command: a list flag gives a list of one. */
const one = (c: Command, name: FlagName, v: unknown) => ((c.flags as Record<string, FlagUse>)[name]?.list ? [v] : v);

const UNIT_SAMPLES = {
  size: { text: "256MiB", bytes: 256 * 2 ** 20, si: "256MB", siBytes: 256e6, bare: "256" },
  rate: { text: "100MiB/s", bytes: 100 * 2 ** 20, si: "100MB/s", siBytes: 100e6, bare: "100" },
  duration: { text: "300ms", bytes: 0.3, si: "2s", siBytes: 2, bare: "300" },
} as const;

describe("the option table", () => {
  it("every command takes exactly its declared flags, all from the table", () => {
    for (const c of COMMANDS) {
      for (const name of declared(c)) expect(FLAGS, `${c.name} --${name}`).toHaveProperty(name);
      for (const name of Object.keys(FLAGS) as FlagName[]) {
        const argv = sample(c, name);
        if (declared(c).includes(name)) expect(() => parse(c, argv), `${c.name} ${argv.join(" ")}`).not.toThrow();
        else expect(() => parse(c, argv), `${c.name} ${argv[0]}`).toThrow(usage(/does not take --/));
      }
    }
  });

  it("every flag of the table is taken by some command, and commands share their names", () => {
    const users = new Map<string, string[]>();
    for (const c of COMMANDS) for (const n of declared(c)) users.set(n, [...(users.get(n) ?? []), c.name]);
    expect([...users.keys()].sort()).toEqual(Object.keys(FLAGS).sort());
    // the flags the issue found spelled differently are now one flag in each of their commands
    expect(users.get("downtime-limit")).toEqual(["simulate", "compare", "send", "migrate-qemu"]);
    expect(users.get("selection")).toEqual(["simulate", "compare", "send", "migrate-qemu"]);
    expect(users.get("bandwidth")).toEqual(["simulate", "compare", "send", "migrate-qemu", "qemu-proxy"]);
  });

  it("a flag reads the same units and gives the same value in every command; a bare number is refused", () => {
    let checked = 0;
    for (const c of COMMANDS)
      for (const name of declared(c)) {
        const type = FLAGS[name].type;
        if (!(type === "size" || type === "rate" || type === "duration")) continue;
        const u = UNIT_SAMPLES[type];
        const what = `${c.name} --${name}`;
        expect(parse(c, [`--${name}`, u.text])[name], what).toEqual(one(c, name, u.bytes));
        expect(parse(c, [`--${name}`, u.si])[name], what).toEqual(one(c, name, u.siBytes));
        expect(() => parse(c, [`--${name}`, u.bare]), what).toThrow(
          usage(new RegExp(`^--${name} ${u.bare}: give a unit, e\\.g\\. ${u.bare}(MiB|ms)`)),
        );
        if (type !== "duration") expect(() => parse(c, [`--${name}`, "1G"]), what).toThrow(usage(/ambiguous/));
        checked++;
      }
    expect(checked).toBeGreaterThanOrEqual(20);
    // the link of a simulation and the rate limit of a real send: the same bytes per second
    const [sim, send, compare] = ["simulate", "send", "compare"].map(byName);
    expect(parse(sim, ["--bandwidth", "100MiB/s"]).bandwidth).toBe(104857600);
    expect(parse(send, ["--bandwidth", "100MiB/s"]).bandwidth).toBe(104857600);
    expect(parse(compare, ["--bandwidth", "100MiB/s,1Gbit"]).bandwidth).toEqual([104857600, 125e6]);
  });

  it("renamed flags are refused by every command with their new name", () => {
    for (const c of COMMANDS)
      for (const [old, now] of Object.entries(RENAMED)) {
        expect(declared(c)).not.toContain(old);
        expect(() => parse(c, [`--${old}`, "1"]), `${c.name} --${old}`).toThrow(
          usage(new RegExp(`^${c.name}: --${old} was renamed: use ${now.replace(/[()]/g, "\\$&")}$`)),
        );
      }
    expect(() => parse(byName("send"), ["--downtime", "300"])).toThrow(usage(/use --downtime-limit, with a unit/));
    expect(() => parse(byName("send"), ["--policy", "vanilla"])).toThrow(usage(/use --selection$/));
  });

  it("defaults come from the table, per command where the command narrows them", () => {
    const send = parse(byName("send"), []);
    expect(send["downtime-limit"]).toBeCloseTo(0.3);
    expect(send.bandwidth).toBeUndefined(); // unlimited
    expect(send["reconnect-window"]).toBe(30);
    expect(send.mode).toBe("precopy");
    expect(parse(byName("simulate"), []).bandwidth).toBe(125e6);
    expect(parse(byName("simulate"), [])["guest-size"]).toBe(2 ** 30);
    expect(parse(byName("compare"), [])["guest-size"]).toBe(256 * 2 ** 20);
    expect(parse(byName("compare"), []).bandwidth).toEqual([10 * 2 ** 20, 100 * 2 ** 20]);
    expect(parse(byName("receive"), [])["max-memory"]).toBe(64 * 2 ** 30);
    // migrate-qemu narrows the modes
    expect(() => parse(byName("migrate-qemu"), ["--mode", "postcopy"])).toThrow(
      usage(/not one of precopy, stop-and-copy/),
    );
    expect(parse(byName("send"), ["--mode", "postcopy"]).mode).toBe("postcopy");
  });

  it("the long commands pass --progress through (auto by default, json, off)", () => {
    const long = ["send", "receive", "migrate-qemu", "qemu-proxy", "simulate", "compare"];
    for (const c of COMMANDS) {
      if (!long.includes(c.name)) {
        expect(declared(c), c.name).not.toContain("progress");
        continue;
      }
      expect(parse(c, []).progress, c.name).toBe("auto");
      expect(parse(c, ["--progress", "json"]).progress, c.name).toBe("json");
      expect(parse(c, ["--progress=off"]).progress, c.name).toBe("off");
      expect(() => parse(c, ["--progress", "loud"]), c.name).toThrow(
        usage(/--progress: 'loud' is not one of auto, json, off/),
      );
    }
  });

  it("help is generated from the table: every flag, its default, and the units with SI vs IEC", () => {
    for (const c of COMMANDS) {
      expect(c.help, c.name).toMatch(new RegExp(`^usage: pagewire ${c.name}\\b`));
      for (const name of declared(c)) expect(c.help, `${c.name} --${name}`).toMatch(new RegExp(`^  --${name}\\b`, "m"));
      const units = declared(c).some((n) => ["size", "rate"].includes(FLAGS[n].type));
      expect(/IEC, 2\^20/.test(c.help) && /SI, 10\^6/.test(c.help), c.name).toBe(units);
    }
    const send = byName("send").help;
    expect(send).toMatch(/--downtime-limit DURATION\s+the downtime the stop rule aims for \(default 300ms\)/);
    expect(send).toMatch(/--bandwidth RATE\s+.*\(default unlimited\)/);
    expect(send).toMatch(/rates\s+100MiB\/s \(IEC, 2\^20 bytes\/s\), 125MB\/s \(SI, 10\^6 bytes\/s\)/);
    expect(byName("simulate").help).toMatch(/--bandwidth RATE\s+the simulated link's bandwidth \(default 1Gbit\)/);
    expect(byName("compare").help).toMatch(/--bandwidth RATE\[,…\]\s+link bandwidths \(default 10MiB\/s,100MiB\/s\)/);
  });
});
