// HMAC-SHA256 for keyed frames. Node's crypto is synchronous; browsers only offer an
// asynchronous WebCrypto, so keyed migrations are Node-only (a browser gets HMAC_UNAVAILABLE).
import { PagewireError } from "../errors.js";
import type { FrameKey, HmacFunction } from "./frame.js";

let nodeHmac: HmacFunction | null = null;
if (typeof process !== "undefined" && process.versions?.node) {
  try {
    const name = "node:crypto";
    const nodeCrypto = (await import(/* @vite-ignore */ name)) as typeof import("node:crypto");
    nodeHmac = (key, parts) => {
      const h = nodeCrypto.createHmac("sha256", key);
      for (const p of parts) h.update(p);
      return new Uint8Array(h.digest());
    };
  } catch {
    nodeHmac = null;
  }
}

/** A frame key for a pre-shared secret (at least 16 bytes). */
export function frameKey(secret: Uint8Array): FrameKey {
  if (!nodeHmac)
    throw new PagewireError(
      "HMAC_UNAVAILABLE",
      "keyed frames need node:crypto (HMAC-SHA256); not available on this platform",
    );
  if (secret.length < 16)
    throw new PagewireError("KEY_TOO_SHORT", `pre-shared key of ${secret.length} bytes; use at least 16`);
  return { key: secret, hmac: nodeHmac };
}
