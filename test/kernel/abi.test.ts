// The ABI between the kernels and the TS layer: the constants of assembly/abi.ts (exported
// by the module as globals) against src/kernel/abi.ts, and the function exports against
// KERNEL_FUNCTIONS (which the compiler ties to KernelExports), in every build.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import * as abi from "../../src/kernel/abi.js";
import { KERNEL_FUNCTIONS } from "../../src/kernel/exports.js";
import { readExportSignatures } from "../support/wasm-signatures.js";

const BUILDS = ["pagewire.wasm", "pagewire-shared.wasm", "pagewire-debug.wasm", "pagewire-debug-shared.wasm"];

/** The TS constants: every upper-case numeric export of src/kernel/abi.ts. */
const TS_CONSTANTS = Object.fromEntries(
  Object.entries(abi).filter(([name, v]) => /^[A-Z][A-Z0-9_]*$/.test(name) && typeof v === "number"),
) as Record<string, number>;

async function instantiate(file: string): Promise<{ bytes: Uint8Array; exports: WebAssembly.Exports }> {
  const bytes = readFileSync(new URL(`../../build/${file}`, import.meta.url));
  const shared = file.includes("shared");
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536, shared } as WebAssembly.MemoryDescriptor);
  const { instance } = await WebAssembly.instantiate(bytes, {
    env: {
      memory,
      abort: () => {
        throw new Error("abort");
      },
    },
  });
  return { bytes, exports: instance.exports };
}

describe.each(BUILDS)("build/%s", (file) => {
  it("exports every ABI constant with the value src/kernel/abi.ts gives it, and no other", async () => {
    const { exports } = await instantiate(file);
    const wasm: Record<string, number> = {};
    for (const [name, v] of Object.entries(exports))
      if (v instanceof WebAssembly.Global) wasm[name] = v.value as number;
    expect(Object.keys(wasm).length).toBeGreaterThan(40);
    expect(Object.keys(wasm).sort()).toEqual(Object.keys(TS_CONSTANTS).sort());
    // globals are i32: compare bit patterns (DEDUP_NONE is 0xffffffff in TS, -1 in the module)
    for (const [name, v] of Object.entries(TS_CONSTANTS)) {
      expect(Number.isInteger(v) && v >= -0x8000_0000 && v <= 0xffff_ffff, `${name} = ${v} fits 32 bits`).toBe(true);
      expect(wasm[name] | 0, name).toBe(v | 0);
    }
  });

  it("exports exactly the functions of KERNEL_FUNCTIONS, with their parameters and results, all numbers", async () => {
    const { bytes, exports } = await instantiate(file);
    const functions = Object.entries(exports).filter(([, v]) => typeof v === "function") as [
      string,
      (...args: number[]) => unknown,
    ][];
    expect(functions.map(([name]) => name).sort()).toEqual(Object.keys(KERNEL_FUNCTIONS).sort());
    const signatures = readExportSignatures(bytes);
    for (const [name, fn] of functions) {
      const [params, results] = KERNEL_FUNCTIONS[name as keyof typeof KERNEL_FUNCTIONS];
      const sig = signatures.get(name)!;
      expect(fn.length, `${name} arity`).toBe(params);
      expect(sig.params.length, `${name} parameters`).toBe(params);
      expect(sig.results.length, `${name} results`).toBe(results);
      // i64 would cross as a BigInt: 64-bit values go through memory (DESIGN.md)
      expect(
        [...sig.params, ...sig.results].filter((t) => t !== "i32" && t !== "f64"),
        `${name} types`,
      ).toEqual([]);
    }
    const others = Object.entries(exports).filter(
      ([, v]) => typeof v !== "function" && !(v instanceof WebAssembly.Global),
    );
    expect(others.map(([name]) => name)).toEqual(["memory"]);
  });
});

describe("readExportSignatures", () => {
  it("reads parameter and result types, counting imported functions first", () => {
    // (module (import "env" "f" (func (param i64))) (func (export "g") (param i32 f64) (result i32) i32.const 0))
    const bytes = new Uint8Array([
      0x00,
      0x61,
      0x73,
      0x6d,
      0x01,
      0x00,
      0x00,
      0x00,
      0x01,
      0x0b,
      0x02,
      0x60,
      0x01,
      0x7e,
      0x00,
      0x60,
      0x02,
      0x7f,
      0x7c,
      0x01,
      0x7f, // types
      0x02,
      0x09,
      0x01,
      0x03,
      0x65,
      0x6e,
      0x76,
      0x01,
      0x66,
      0x00,
      0x00, // import env.f: type 0
      0x03,
      0x02,
      0x01,
      0x01, // function 1: type 1
      0x07,
      0x05,
      0x01,
      0x01,
      0x67,
      0x00,
      0x01, // export "g" = function 1
      0x0a,
      0x06,
      0x01,
      0x04,
      0x00,
      0x41,
      0x00,
      0x0b, // code
    ]);
    expect(WebAssembly.validate(bytes)).toBe(true);
    expect([...readExportSignatures(bytes)]).toEqual([["g", { params: ["i32", "f64"], results: ["i32"] }]]);
  });
});
