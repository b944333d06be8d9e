// The folders of src/ form layers: no folder imports another that imports it back
// (directly or through others), and the bottom layers import only what is below them.
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { findCycles, folderImports } from "../support/import-graph.js";

const SRC = fileURLToPath(new URL("../../src", import.meta.url));

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
});
