import { readFileSync } from "node:fs";
import { frameKey } from "../wire/hmac.js";
import type { FrameKey } from "../wire/frame.js";
import { UsageError } from "./usage.js";

/** "host:port" → [host, port]. */
export function parseHostPort(value: string | undefined, what: string): [string, number] {
  if (!value) throw new UsageError(`${what} HOST:PORT is required`);
  const i = value.lastIndexOf(":");
  const port = Number(value.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`${what}: '${value}' is not HOST:PORT`);
  return [value.slice(0, i).replace(/^\[|\]$/g, ""), port];
}

/** The pre-shared key in FILE (its bytes, at least 16). */
export function readKey(file: string | undefined): FrameKey | undefined {
  if (!file) return undefined;
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(file));
  } catch (err) {
    throw new UsageError(`--key: cannot read ${file}: ${(err as Error).message}`);
  }
  return frameKey(bytes);
}
