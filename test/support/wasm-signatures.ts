// Reads the signatures of a module's function exports from its binary (the JS API does
// not expose them): type, import, function and export sections only.
//
//   module   = magic:u32 version:u32 section*
//   section  = id:u8 size:uleb128 content{size}
//   type     = vec(0x60 vec(valtype) vec(valtype))              section 1
//   import   = vec(name name desc)  desc = 0 typeidx | 1 table | 2 memory | 3 global   section 2
//   function = vec(typeidx)                                      section 3
//   export   = vec(name kind:u8 index)                           section 7
//
// see: https://webassembly.github.io/spec/core/binary/modules.html

export type ValueType = "i32" | "i64" | "f32" | "f64" | "v128" | "funcref" | "externref";

export interface FunctionSignature {
  params: ValueType[];
  results: ValueType[];
}

const VALUE_TYPES: Record<number, ValueType> = {
  0x7f: "i32",
  0x7e: "i64",
  0x7d: "f32",
  0x7c: "f64",
  0x7b: "v128",
  0x70: "funcref",
  0x6f: "externref",
};

/** The signature of each exported function, by export name. */
export function readExportSignatures(bytes: Uint8Array): Map<string, FunctionSignature> {
  let at = 8;
  const byte = (): number => bytes[at++];
  const uleb = (): number => {
    let v = 0,
      shift = 0,
      b: number;
    do {
      b = byte();
      v += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return v;
  };
  const name = (): string => {
    const n = uleb();
    const s = new TextDecoder().decode(bytes.subarray(at, at + n));
    at += n;
    return s;
  };
  const valueType = (): ValueType => {
    const t = VALUE_TYPES[byte()];
    if (!t) throw new Error(`unknown value type 0x${bytes[at - 1].toString(16)} at ${at - 1}`);
    return t;
  };
  const vec = <T>(item: () => T): T[] => Array.from({ length: uleb() }, item);
  const limits = (): void => {
    const flags = byte();
    uleb();
    if (flags & 1) uleb();
  };

  const types: FunctionSignature[] = [];
  const functionTypes: number[] = []; // imported functions first, then the module's own
  const exports = new Map<string, FunctionSignature>();
  while (at < bytes.length) {
    const id = byte();
    const size = uleb();
    const end = at + size;
    if (id === 1) {
      vec(() => {
        if (byte() !== 0x60) throw new Error(`type entry at ${at - 1} is not a function type`);
        types.push({ params: vec(valueType), results: vec(valueType) });
      });
    } else if (id === 2) {
      vec(() => {
        name();
        name();
        const kind = byte();
        if (kind === 0) functionTypes.push(uleb());
        else if (kind === 1) {
          byte();
          limits();
        } else if (kind === 2) limits();
        else if (kind === 3) {
          valueType();
          byte();
        } else throw new Error(`unknown import kind ${kind}`);
      });
    } else if (id === 3) {
      functionTypes.push(...vec(uleb));
    } else if (id === 7) {
      vec(() => {
        const n = name();
        const kind = byte();
        const index = uleb();
        if (kind === 0) exports.set(n, types[functionTypes[index]]);
      });
    }
    at = end;
  }
  return exports;
}
