// Folder-level import graph of src/: which top-level folder imports which.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

const IMPORT = /(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g;

/** Every .ts file below `dir`. */
export function listTsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? listTsFiles(p) : p.endsWith(".ts") ? [p] : [];
  });
}

/** The folder of `file` under `root`; a file directly in root is a node of its own ("errors.ts"). */
function folderOf(root: string, file: string): string {
  const rel = relative(root, file).split(sep);
  return rel.length > 1 ? rel[0] : rel[0].replace(/\.js$/, ".ts");
}

/** Edges folder → folder (with one example import each) for every relative import under `root`. */
export function folderImports(root: string): Map<string, Map<string, string>> {
  const edges = new Map<string, Map<string, string>>();
  for (const file of listTsFiles(root)) {
    const from = folderOf(root, file);
    for (const m of readFileSync(file, "utf8").matchAll(IMPORT)) {
      const to = folderOf(root, resolve(dirname(file), m[1]));
      if (to === from) continue;
      if (!edges.has(from)) edges.set(from, new Map());
      edges.get(from)!.set(to, `${relative(root, file)} imports ${m[1]}`);
    }
  }
  return edges;
}

/** Every cycle's folders, found by depth-first search (empty when the graph is a DAG). */
export function findCycles(edges: ReadonlyMap<string, ReadonlyMap<string, string>>): string[][] {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (n: string) => {
    state.set(n, "open");
    stack.push(n);
    for (const m of edges.get(n)?.keys() ?? []) {
      if (state.get(m) === "open") cycles.push([...stack.slice(stack.indexOf(m)), m]);
      else if (!state.has(m)) visit(m);
    }
    stack.pop();
    state.set(n, "done");
  };
  for (const n of edges.keys()) if (!state.has(n)) visit(n);
  return cycles;
}
