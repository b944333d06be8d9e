import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));

describe("the built package", () => {
  it("plain node imports it by name, with no loader flags, and runs a kernel", () => {
    expect(existsSync(`${root}/dist/index.js`), "run `npm run build` first").toBe(true);
    const code = `import { loadKernel, DirtyBitmap } from "pagewire";
      const k = await loadKernel();
      const b = new DirtyBitmap(k, 100); b.setRange(10, 5);
      console.log(k.build, JSON.stringify(b.ranges()));`;
    const { PAGEWIRE_KERNEL: _, ...env } = process.env; // the build a user gets by default
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", code], { cwd: root, encoding: "utf8", env });
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe('release [{"first":10,"count":5}]');
  });

  it("bundles for the browser with no Node-only import and the wasm located by URL", async () => {
    const out = await build({
      entryPoints: [`${root}/dist/index.js`],
      bundle: true,
      platform: "browser",
      format: "esm",
      write: false,
      logLevel: "silent",
    });
    const text = out.outputFiles[0].text;
    expect(text).toContain("pagewire.wasm");
    expect(text).toContain("import.meta.url");
    expect(text).not.toMatch(/from\s+["']node:/);
  });
});
