// Error codes come from one table (ERROR_CODES in src/errors.ts): every code src and the
// tests name is in it, every entry is used, and no code is tested by its prefix.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ERROR_CODES, isPagewireErrorCode } from "../../src/errors.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const SELF = fileURLToPath(import.meta.url);

// Files that still test a code by prefix, to be replaced by an instanceof check
// (src/engine/source.ts: `code.startsWith("FRAME_")` → `err instanceof FrameError`).
const PREFIX_CHECKS_TO_REPLACE: string[] = [];

/** Where a code is named: error constructors, `super(…)`, comparisons with `.code`, `code: …` in expectations. */
const CODE_PATTERNS = [
  /new\s+\w*Error\(\s*"([A-Z][A-Z0-9_]*)"/g,
  /\bsuper\(\s*"([A-Z][A-Z0-9_]*)"/g,
  /\.code\s*[!=]==?\s*"([A-Z][A-Z0-9_]*)"/g,
  /"([A-Z][A-Z0-9_]*)"\s*[!=]==?\s*[\w.?]*\.code\b/g,
  /\bcode:\s*"([A-Z][A-Z0-9_]*)"/g,
  /\.code\)\.toBe\(\s*"([A-Z][A-Z0-9_]*)"\s*\)/g,
  /\bcode\(\s*"([A-Z][A-Z0-9_]*)"\s*\)/g,
];
/** Node's system error codes (err.code of a failed fs or process call), not pagewire's. */
const SYSTEM_ERRNO = new Set([
  "EEXIST",
  "EPERM",
  "ENOENT",
  "ESRCH",
  "EACCES",
  "ELOOP",
  "EADDRINUSE",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
]);

/** A code tested by its prefix: `.startsWith("FRAME_")`. */
const PREFIX_PATTERN = /\.startsWith\(\s*"([A-Z][A-Z0-9]*_)"\s*\)/g;

interface Use {
  code: string;
  at: string;
}

function findUses(text: string, file: string, patterns: RegExp[]): Use[] {
  const uses: Use[] = [];
  for (const pattern of patterns) {
    for (const m of text.matchAll(pattern)) {
      const line = text.slice(0, m.index).split("\n").length;
      uses.push({ code: m[1], at: `${file}:${line}` });
    }
  }
  return uses;
}

function listTsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return listTsFiles(path);
    return e.name.endsWith(".ts") && path !== SELF ? [path] : [];
  });
}

const files = (dir: string) =>
  listTsFiles(join(ROOT, dir)).map((path) => ({ path: relative(ROOT, path), text: readFileSync(path, "utf8") }));
const src = files("src");
const tests = files("test");

describe("error codes", () => {
  it("every code src and the tests name is in ERROR_CODES", () => {
    const uses = [...src, ...tests].flatMap((f) => findUses(f.text, f.path, CODE_PATTERNS));
    expect(uses.length).toBeGreaterThan(150);
    expect(uses.filter((u) => !isPagewireErrorCode(u.code) && !SYSTEM_ERRNO.has(u.code))).toEqual([]);
  });

  it("every code in ERROR_CODES is used in src", () => {
    const text = src
      .filter((f) => f.path !== "src/errors.ts")
      .map((f) => f.text)
      .join("\n");
    expect(Object.keys(ERROR_CODES).filter((code) => !text.includes(`"${code}"`))).toEqual([]);
  });

  it("no code is tested by its prefix", () => {
    const uses = [...src, ...tests].flatMap((f) => findUses(f.text, f.path, [PREFIX_PATTERN]));
    expect(uses.filter((u) => !PREFIX_CHECKS_TO_REPLACE.some((file) => u.at.startsWith(`${file}:`)))).toEqual([]);
    for (const u of uses)
      expect(
        Object.keys(ERROR_CODES).some((code) => code.startsWith(u.code)),
        u.at,
      ).toBe(true);
  });

  it("the scan finds codes in each form it looks for", () => {
    const text = [
      `throw new FrameError("FRAME_A", "x");`,
      `super("B_CODE", message);`,
      `if ((err as QmpError).code !== "C_CODE") throw err;`,
      `expect.objectContaining({ code: "D_CODE" })`,
      `expect((e as PagewireError).code).toBe("E_CODE");`,
      `if (code.startsWith("F_")) continue;`,
    ].join("\n");
    expect(findUses(text, "t.ts", CODE_PATTERNS)).toEqual([
      { code: "FRAME_A", at: "t.ts:1" },
      { code: "B_CODE", at: "t.ts:2" },
      { code: "C_CODE", at: "t.ts:3" },
      { code: "D_CODE", at: "t.ts:4" },
      { code: "E_CODE", at: "t.ts:5" },
    ]);
    expect(findUses(text, "t.ts", [PREFIX_PATTERN])).toEqual([{ code: "F_", at: "t.ts:6" }]);
  });
});
