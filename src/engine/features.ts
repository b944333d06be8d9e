// Handshake features (HELLO/WELCOME, wire/messages.ts): one per codec whose records the
// destination must decode (codec/codecs.ts), then the engine's own. The source offers
// what its options allow; the destination answers with the offered features it accepts;
// a codec whose feature was not accepted stays off.
import { CODEC_FEATURES, offerCodecFeatures, type CodecFeature, type CodecFlags } from "../codec/codecs.js";
import { ProtocolError } from "../wire/messages.js";

export const ENGINE_FEATURES = ["postcopy", "device-state"] as const;
export type Feature = CodecFeature | (typeof ENGINE_FEATURES)[number];

export const ALL_FEATURES: readonly Feature[] = [...CODEC_FEATURES, ...ENGINE_FEATURES];
/** Features the destination implements (every one). */
export const IMPLEMENTED_FEATURES: readonly Feature[] = ALL_FEATURES;

export function isFeature(name: unknown): name is Feature {
  return (ALL_FEATURES as readonly unknown[]).includes(name);
}

/** The features a source with these codec flags offers, in ALL_FEATURES order. */
export function offerFeatures(codecs: Readonly<CodecFlags> = {}): Feature[] {
  return [...offerCodecFeatures(codecs), ...ENGINE_FEATURES];
}

/**
 * The destination's answer: the offered features, in offer order, that it implements and
 * `allowed` permits (default: all it implements). Unknown names are dropped.
 */
export function acceptFeatures(
  offered: readonly unknown[],
  allowed: readonly Feature[] = IMPLEMENTED_FEATURES,
): Feature[] {
  return offered.filter((f): f is Feature => isFeature(f) && IMPLEMENTED_FEATURES.includes(f) && allowed.includes(f));
}

/** The source's check of a WELCOME: every accepted feature was offered. Returns them (PROTOCOL_MISMATCH otherwise). */
export function checkAcceptedFeatures(offered: readonly Feature[], accepted: readonly unknown[]): Feature[] {
  const unknown = accepted.filter((f) => !(offered as readonly unknown[]).includes(f));
  if (unknown.length)
    throw new ProtocolError(
      "PROTOCOL_MISMATCH",
      `destination accepted features that were not offered: ${unknown.join(", ")}`,
    );
  return accepted as Feature[];
}
