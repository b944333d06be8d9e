// The folders of src/ form layers: no folder imports another that imports it back
// (directly or through others), and the bottom layers import only what is below them.
import { readdirSync } from "node:fs";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { findCycles, folderImports, listTsFiles } from "../support/import-graph.js";

const SRC = fileURLToPath(new URL("../../src", import.meta.url));
const ASSEMBLY = fileURLToPath(new URL("../../assembly", import.meta.url));

/** Kernel files with no TypeScript file of their own, and where their wrapper lives. */
const WRAPPED_ELSEWHERE: Record<string, string> = {
  "index.ts": "the module's re-exports",
  "gather.ts": "memory/wasm-guest-memory.ts (readPages)",
};

describe("src/ folders", () => {
  const edges = folderImports(SRC);

  it("import each other without cycles", () => {
    const cycles = findCycles(edges).map((c) =>
      c.map((f, i) => (i + 1 < c.length ? `${f} (${edges.get(f)!.get(c[i + 1])})` : f)).join(" → "),
    );
    expect(cycles).toEqual([]);
  });

  it("keep util/ and kernel/ at the bottom", () => {
    const allowed: Record<string, string[]> = { util: ["errors.ts"], kernel: ["errors.ts", "util"] };
    for (const [folder, ok] of Object.entries(allowed)) {
      const bad = [...(edges.get(folder) ?? new Map())].filter(([to]) => !ok.includes(to)).map(([, why]) => why);
      expect(bad, folder).toEqual([]);
    }
  });

  it("the cycle finder finds a cycle through three folders", () => {
    const g = new Map([
      ["a", new Map([["b", ""]])],
      ["b", new Map([["c", ""]])],
      [
        "c",
        new Map([
          ["a", ""],
          ["d", ""],
        ]),
      ],
    ]);
    expect(findCycles(g)).toEqual([["a", "b", "c", "a"]]);
    g.get("c")!.delete("a");
    expect(findCycles(g)).toEqual([]);
  });

  it("mirror the kernel's file names: each assembly/NAME.ts has a src/**/NAME.ts", () => {
    const ts = new Set(listTsFiles(SRC).map((f) => basename(f)));
    const kernels = readdirSync(ASSEMBLY).filter((f) => f.endsWith(".ts") && f !== "tsconfig.json");
    expect(kernels.length).toBeGreaterThan(8);
    expect(kernels.filter((f) => !ts.has(f) && !(f in WRAPPED_ELSEWHERE))).toEqual([]);
  });
});
