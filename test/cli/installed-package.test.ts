// The package as a user gets it: a clean copy of this tree (git's files, no dist/, build/ or
// recordings/) is packed with `npm pack` (its prepack builds and copies the recordings), the
// tarball is installed into an empty project, and README's example and the commands run
// there through `npx pagewire`. Anything the package misses fails here.
import { spawn, spawnSync, type SpawnSyncReturns } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const DATASETS = process.env.PAGEWIRE_DATASETS ?? join(ROOT, "..", "shared", "datasets");
const work = mkdtempSync(join(tmpdir(), "pagewire-installed-"));
const tree = join(work, "tree");
const project = join(work, "project");
afterAll(() => rmSync(work, { recursive: true, force: true }));

// the parent npm's settings (npm_config_prefix …, set when vitest runs under npm) must not steer the child npm
const cleanEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith("npm_") && k !== "PAGEWIRE_DATASETS"),
);

function run(
  cmd: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = cleanEnv,
  timeout = 90_000,
): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env, encoding: "utf8", timeout });
  if (r.error) throw r.error;
  return r;
}

/** `npx --no -- pagewire …` in the consumer project: never fetches a registry package of that name. */
function pagewire(...args: string[]): SpawnSyncReturns<string> {
  return run("npx", ["--no", "--", "pagewire", ...args], project);
}

function ok(r: SpawnSyncReturns<string>): string {
  expect(r.status, `exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(0);
  return r.stdout;
}

let packed: { filename: string; files: { path: string }[]; size: number };
const timings: Record<string, number> = {};

beforeAll(() => {
  // a fresh checkout: the files git knows (committed or not ignored), the dev dependencies linked
  let t = performance.now();
  const listed = run("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], ROOT);
  expect(listed.status, listed.stderr).toBe(0);
  for (const f of listed.stdout.split("\0").filter(Boolean)) {
    if (f === "node_modules") continue;
    try {
      mkdirSync(dirname(join(tree, f)), { recursive: true });
      cpSync(join(ROOT, f), join(tree, f));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err; // deleted, not yet committed
    }
  }
  symlinkSync(realpathSync(join(ROOT, "node_modules")), join(tree, "node_modules"));
  const pack = run(
    "npm",
    ["pack", "--json", "--pack-destination", work],
    tree,
    {
      ...cleanEnv,
      PAGEWIRE_DATASETS: DATASETS, // the copy is not beside ../shared
    },
    300_000, // the full build: ~30 s alone, several times that beside the rest of the suite on 2 cores
  );
  expect(pack.status, `npm pack failed:\n${pack.stderr}`).toBe(0);
  packed = JSON.parse(pack.stdout.slice(pack.stdout.indexOf("[")))[0];
  timings.pack = performance.now() - t;

  t = performance.now();
  mkdirSync(project);
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
  const install = run(
    "npm",
    ["install", "--no-audit", "--no-fund", "--prefer-offline", join(work, packed.filename)],
    project,
  );
  expect(install.status, `npm install failed:\n${install.stderr}`).toBe(0);
  timings.install = performance.now() - t;
}, 400_000);

afterAll(() => console.log(`installed-package: ${JSON.stringify(timings)} ms`));

describe("the installed package", () => {
  it("holds LICENSE, dist, the .wasm builds and the recordings, and no source maps or sources", () => {
    const paths = packed.files.map((f) => f.path);
    expect(paths).toContain("LICENSE");
    expect(readFileSync(join(project, "node_modules/pagewire/LICENSE"), "utf8")).toMatch(
      /^MIT License\n\nCopyright \(c\) 2026 pagewire contributors/,
    );
    for (const f of ["dist/cli/main.js", "dist/index.js", "dist/index.d.ts", "dist/node.js", "build/pagewire.wasm"])
      expect(paths).toContain(f);
    for (const set of ["idle", "redis", "dirtier"])
      expect(paths).toContain(`recordings/qemu-tcg-128m/${set}/meta.json`);
    expect(paths.filter((p) => p.endsWith(".map"))).toEqual([]);
    expect(paths.filter((p) => p.startsWith("src/"))).toEqual([]);
    // no runtime dependencies: nothing but pagewire was installed
    expect(readdirSync(join(project, "node_modules")).filter((d) => !d.startsWith("."))).toEqual(["pagewire"]);
  });

  it("runs README's example", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const example = /## Example\n\n```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(example, "README has an ## Example ts block").toBeTruthy();
    writeFileSync(join(project, "example.mjs"), example!);
    expect(ok(run("node", ["example.mjs"], project))).toBe("32 [ { first: 100, count: 32 } ]\n");
  });

  it("npx pagewire --help lists the commands, and each command has help", () => {
    const out = ok(pagewire("--help"));
    const names = [...out.matchAll(/^ {2}([a-z-]+) {2,}/gm)].map((m) => m[1]);
    expect(names).toEqual(expect.arrayContaining(["simulate", "compare", "bench", "send", "receive", "selfcheck"]));
    // the installed bin directly: npx's own start-up costs ~1 s a call
    const bin = join(project, "node_modules", ".bin", "pagewire");
    for (const name of names)
      expect(ok(run(bin, [name, "--help"], project))).toMatch(new RegExp(`usage: pagewire ${name}\\b`));
  });

  it("selfcheck passes", () => {
    expect(ok(pagewire("selfcheck"))).toMatch(/kernel self-check: \d+ passed, 0 failed/);
  });

  it("simulate runs the default guest, and a shipped recording from the package's own copy", () => {
    const def = JSON.parse(ok(pagewire("simulate", "--json")));
    expect([def.report.status, def.verified]).toEqual(["completed", true]);
    // the project sits in a temporary folder: no ../shared/datasets, only the package's recordings/
    const trace = JSON.parse(ok(pagewire("simulate", "--trace", "redis", "--json")));
    expect([trace.report.status, trace.verified, trace.scenario["guest-bytes"]]).toEqual(["completed", true, 2 ** 27]);
  });

  it("bench refuses with what is missing", () => {
    const r = pagewire("bench", "--quick");
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/not part of the installed package; run them from a source checkout/);
  });

  it("record, send and receive work from the package", async () => {
    const ram = join(work, "ram.img");
    writeFileSync(ram, Buffer.alloc(256 * 4096, 5));
    const rec = ok(
      pagewire("record", "--memory", ram, "--interval", "20ms", "--count", "2", "--out", join(work, "rec")),
    );
    expect(rec).toMatch(/^recorded 256 pages, 2 intervals of 20 ms/);
    writeFileSync(join(work, "psk"), "a pre-shared key, 32 bytes long!");
    const out = join(work, "received.img");
    const rx = spawn(
      "npx",
      ["--no", "--", "pagewire", "receive", "--listen", "127.0.0.1:0", "--out", out, "--key", join(work, "psk")],
      {
        cwd: project,
        env: cleanEnv,
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    let stderr = "";
    const port = await new Promise<number>((resolve, reject) => {
      rx.stderr!.on("data", (d: Buffer) => {
        stderr += d;
        const m = /listening on [^:]+:(\d+)/.exec(stderr);
        if (m) resolve(Number(m[1]));
      });
      rx.on("exit", (code) => reject(new Error(`receive exited ${code}: ${stderr}`)));
    });
    const exited = new Promise<number | null>((resolve) => rx.on("exit", resolve));
    const tx = pagewire("send", "--memory", ram, "--to", `127.0.0.1:${port}`, "--key", join(work, "psk"), "--json");
    expect(JSON.parse(ok(tx)).status).toBe("completed");
    expect(await exited).toBe(0);
    expect(Buffer.compare(readFileSync(out), readFileSync(ram))).toBe(0);
  });

  // last: it removes the package's recordings
  it("without its recordings, simulate --trace says where it looked", () => {
    rmSync(join(project, "node_modules/pagewire/recordings"), { recursive: true });
    const r = pagewire("simulate", "--trace", "redis");
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /recording 'redis' not found: looked for qemu-tcg-128m\/redis\/meta\.json in .*pagewire\/recordings/,
    );
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });
});
