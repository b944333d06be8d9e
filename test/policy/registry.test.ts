import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createPolicy, listPolicies, PagewireError } from "../../src/index.js";

describe("policy registry", () => {
  it("lists every policy with its kind and a description", () => {
    const byKind = (kind: string) =>
      listPolicies()
        .filter((p) => p.kind === kind)
        .map((p) => p.name);
    expect(byKind("selection")).toEqual([
      "vanilla",
      "xen-to-skip",
      "reuse-distance",
      "dpdt",
      "second-chance",
      "history-threshold",
      "block-ordered",
      "microwiper",
      "weighted-hot",
    ]);
    expect(byKind("termination")).toEqual(["qemu", "xen", "xen-legacy", "max-rounds", "adaptive"]);
    expect(byKind("non-convergence")).toEqual(["throttle", "postcopy", "force-stop"]);
    for (const p of listPolicies()) expect(p.description.length).toBeGreaterThan(10);
  });

  it("creates each policy by name, with its kind and name", () => {
    for (const info of listPolicies()) {
      const p = createPolicy(info.kind, info.name);
      expect([p.kind, p.name]).toEqual([info.kind, info.name]);
    }
  });

  it("rejects unknown names with UNKNOWN_POLICY and lists the known ones", () => {
    try {
      createPolicy("selection", "lru");
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(PagewireError);
      expect((e as PagewireError).code).toBe("UNKNOWN_POLICY");
      expect((e as Error).message).toMatch(/9 known: vanilla, xen-to-skip/);
    }
  });

  it("README's policy table states each policy's rule as the code describes it", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    for (const p of listPolicies()) expect(readme).toContain(`| \`${p.name}\` | ${p.kind} | ${p.description} |`);
  });
});
