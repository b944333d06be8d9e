// A `pagewire` sub-command built from the option table (src/cli/options.ts): its flags are
// parsed by the table's types and the one unit parser, and its help is generated from the
// table, listing each flag's value, default and the units it takes.
import { parseArgs } from "node:util";
import { FLAGS, type Flag, type FlagName, type FlagType, RENAMED } from "./options.js";
import { parseDuration, parseNumber, parseRate, parseSize, UNIT_FORMS } from "./units.js";
import { type Command, UsageError } from "./usage.js";

/** How one command uses a flag of the table: it may narrow it, never change its type. */
export interface FlagUse {
  /** This command's help line (the table's otherwise). */
  readonly help?: string;
  /** This command's default; null: none (the table's otherwise). */
  readonly default?: string | null;
  readonly absent?: string;
  readonly values?: () => readonly string[];
  /** The value is a comma list of the flag's type (compare crosses them). */
  readonly list?: boolean;
  readonly arg?: string;
  /** The heading the flag is listed under in help. */
  readonly group?: string;
}

export type FlagUses = { readonly [K in FlagName]?: FlagUse };

type TypeOf<K extends FlagName> = (typeof FLAGS)[K]["type"];
type Base<T extends FlagType> = T extends "bool" ? boolean : T extends "string" | "enum" ? string : number;
type Value<K extends FlagName, U> = U extends { list: true } ? Base<TypeOf<K>>[] : Base<TypeOf<K>>;
type HasDefault<K extends FlagName, U> =
  TypeOf<K> extends "bool"
    ? true
    : U extends { default: string }
      ? true
      : U extends { default: null }
        ? false
        : (typeof FLAGS)[K] extends { default: string }
          ? true
          : false;

/** What a command's flags parse to: sizes in bytes, rates in bytes/s, durations in seconds. */
export type Parsed<U extends FlagUses> = {
  -readonly [K in keyof U & FlagName]: HasDefault<K, U[K]> extends true ? Value<K, U[K]> : Value<K, U[K]> | undefined;
};

/** A command with the table's flags: `parse` reads argv (no I/O), `run` parses then executes. */
export interface TableCommand<U extends FlagUses> extends Command {
  readonly flags: U;
  parse(argv: string[]): Parsed<U>;
}

const ARG: Record<FlagType, string> = {
  size: "SIZE",
  rate: "RATE",
  duration: "DURATION",
  count: "N",
  number: "X",
  string: "VALUE",
  enum: "NAME",
  bool: "",
};

/** The table's flag with this command's narrowing applied. */
function effective(name: FlagName, use: FlagUse): Flag & { list: boolean; group?: string } {
  const base: Flag = FLAGS[name];
  return {
    ...base,
    help: use.help ?? base.help,
    default: use.default === null ? undefined : (use.default ?? base.default),
    absent: use.absent ?? (use.default === null ? undefined : base.absent),
    values: use.values ?? base.values,
    arg: use.arg ?? base.arg,
    list: use.list ?? false,
    group: use.group,
  };
}

function convert(name: FlagName, flag: Flag, text: string): unknown {
  const what = `--${name}`;
  switch (flag.type) {
    case "size":
      return parseSize(text, what);
    case "rate":
      return parseRate(text, what);
    case "duration":
      return parseDuration(text, what);
    case "count":
      return parseNumber(text, what, { min: flag.min ?? 0, max: flag.max, integer: true });
    case "number":
      return parseNumber(text, what, { min: flag.min, max: flag.max });
    case "enum": {
      const values = flag.values!();
      if (!values.includes(text)) throw new UsageError(`${what}: '${text}' is not one of ${values.join(", ")}`);
      return text;
    }
    default:
      return text;
  }
}

/** Reads argv against the flags a command takes; refuses renamed and foreign flags by name. */
export function parseFlags<U extends FlagUses>(
  command: string,
  argv: string[],
  uses: U,
  allowPositionals = false,
): { values: Parsed<U>; positionals: string[] } {
  const names = Object.keys(uses) as FlagName[];
  const options = Object.fromEntries(
    names.map((n) => [n, { type: FLAGS[n].type === "bool" ? ("boolean" as const) : ("string" as const) }]),
  );
  // names first, loosely, so that an old or foreign flag gets its own message
  const { tokens } = parseArgs({ args: argv, options, strict: false, allowPositionals: true, tokens: true });
  for (const t of tokens) {
    if (t.kind !== "option" || (names as string[]).includes(t.name)) continue;
    const flag = t.rawName;
    if (RENAMED[t.name]) throw new UsageError(`${command}: ${flag} was renamed: use ${RENAMED[t.name]}`);
    throw new UsageError(
      `${t.name in FLAGS ? `${command} does not take ${flag}` : `${command}: unknown option ${flag}`} (see pagewire ${command} --help)`,
    );
  }
  let parsed: ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: boolean; strict: true }>>;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals });
  } catch (err) {
    throw new UsageError(`${command}: ${(err as Error).message.split("\n")[0]}`);
  }
  const values: Record<string, unknown> = {};
  for (const n of names) {
    const flag = effective(n, uses[n]!);
    const given = parsed.values[n] as string | boolean | undefined;
    if (flag.type === "bool") {
      values[n] = given === true;
      continue;
    }
    const text = (given as string | undefined) ?? flag.default;
    if (text === undefined) values[n] = undefined;
    else if (flag.list) {
      const items = text
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      if (items.length === 0) throw new UsageError(`--${n}: give at least one value`);
      values[n] = items.map((s) => convert(n, flag, s));
    } else values[n] = convert(n, flag, text);
  }
  return { values: values as Parsed<U>, positionals: parsed.positionals };
}

/** Help text: the command's synopsis and description, its flags from the table, the units they take. */
export function helpFor(spec: {
  name: string;
  usage: string;
  about: string;
  flags: FlagUses;
  epilogue?: string;
}): string {
  const rows: { group: string; left: string; right: string }[] = [];
  const types = new Set<FlagType>();
  for (const [n, use] of Object.entries(spec.flags) as [FlagName, FlagUse][]) {
    const f = effective(n, use);
    types.add(f.type);
    const arg = f.type === "bool" ? "" : ` ${f.arg ?? ARG[f.type]}${f.list ? "[,…]" : ""}`;
    const facts = [
      // an enum whose help does not already name its values lists them
      f.type === "enum" && !f.values!().every((x) => new RegExp(`\\b${x}\\b`).test(f.help))
        ? `one of ${f.values!().join(", ")}`
        : "",
      f.default !== undefined ? `default ${f.default}` : f.absent ? `default ${f.absent}` : "",
    ].filter(Boolean);
    rows.push({
      group: f.group ?? "options",
      left: `--${n}${arg}`,
      right: `${f.help}${facts.length ? ` (${facts.join("; ")})` : ""}`,
    });
  }
  const width = Math.min(26, Math.max(...rows.map((r) => r.left.length)));
  const lines: string[] = [];
  for (const group of [...new Set(rows.map((r) => r.group))]) {
    lines.push(...(lines.length ? [""] : []), `${group}:`);
    for (const r of rows.filter((x) => x.group === group)) {
      const text = wrap(r.right, 96 - width - 4);
      if (r.left.length > width) lines.push(`  ${r.left}`, ...text.map((t) => `  ${" ".repeat(width)}  ${t}`));
      else lines.push(...text.map((t, i) => `  ${(i === 0 ? r.left : "").padEnd(width)}  ${t}`));
    }
  }
  const units = (["size", "rate", "duration"] as const).filter((t) => types.has(t));
  if (units.length) {
    const bytes = types.has("size") || types.has("rate");
    lines.push("", `units (a bare number is refused${bytes ? ", and so is 1G: say 1GiB or 1GB" : ""}; 0 needs none):`);
    for (const t of units) lines.push(`  ${`${t}s`.padEnd(10)} ${UNIT_FORMS[t]}`);
  }
  return [
    spec.usage,
    "",
    spec.about,
    ...(lines.length ? ["", ...lines] : []),
    ...(spec.epilogue ? ["", spec.epilogue] : []),
  ].join("\n");
}

function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...out, line];
}

/** A sub-command whose flags come from the table. */
export function defineCommand<const U extends FlagUses>(spec: {
  name: string;
  summary: string;
  /** The synopsis: "usage: pagewire NAME …" (one or more lines). */
  usage: string;
  /** What the command does, before the flags. */
  about: string;
  flags: U;
  /** After the flags and units: exit codes, notes. */
  epilogue?: string;
  positionals?: boolean;
  run(o: Parsed<U>, positionals: string[]): Promise<number>;
}): TableCommand<U> {
  const parse = (argv: string[]) => parseFlags(spec.name, argv, spec.flags, spec.positionals);
  return {
    name: spec.name,
    summary: spec.summary,
    flags: spec.flags,
    get help() {
      return helpFor(spec);
    },
    parse: (argv) => parse(argv).values,
    run(argv) {
      const { values, positionals } = parse(argv);
      return spec.run(values, positionals);
    },
  };
}
