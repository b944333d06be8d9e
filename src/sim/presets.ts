// Named configurations of the engine for simulate/compare. `qemu` reproduces what QEMU 7.2
// does by default with XBZRLE on: vanilla selection (every dirty page each round), stop
// when pending ≤ bandwidth × 300 ms (no auto-converge: otherwise iterate, up to the
// engine's 30 rounds), zero pages, XBZRLE with a 64 MiB cache from the first dirty-sync
// round, nothing else. The `pagewire*` presets stop anyway when a round does not
// converge (force-stop). The `pagewire*` presets switch on the other codecs and
// policies.
import { selectAllCodecs, selectCodecs } from "../codec/codecs.js";
import type { CodecOptions } from "../codec/encode-pipeline.js";

export interface Preset {
  name: string;
  description: string;
  codecs: CodecOptions;
  /** nonConvergence undefined: none (iterate until the termination rule or maxRounds, as QEMU without auto-converge). */
  policy: { selection: string; termination: string; nonConvergence?: string };
  downtimeLimitMs: number;
}

const ALL_CODECS: CodecOptions = { ...selectAllCodecs(), xbzrleCacheBytes: 64 << 20, xbzrleFromRound: 1 };

export const PRESETS: Preset[] = [
  {
    name: "qemu",
    description: "QEMU 7.2: vanilla, qemu termination at 300 ms, zero pages, XBZRLE 64 MiB from round 1",
    codecs: { ...selectCodecs(["zero", "xbzrle"]), xbzrleCacheBytes: 64 << 20, xbzrleFromRound: 1 },
    policy: { selection: "vanilla", termination: "qemu" },
    downtimeLimitMs: 300,
  },
  {
    name: "pagewire",
    description: "every codec (zero, unchanged, dedup, XBZRLE, RLE), vanilla, qemu termination",
    codecs: ALL_CODECS,
    policy: { selection: "vanilla", termination: "qemu", nonConvergence: "force-stop" },
    downtimeLimitMs: 300,
  },
  {
    name: "pagewire-history",
    description: "every codec, history-threshold selection (Bhatia & Singh 2018), qemu termination",
    codecs: ALL_CODECS,
    policy: { selection: "history-threshold", termination: "qemu", nonConvergence: "force-stop" },
    downtimeLimitMs: 300,
  },
  {
    name: "pagewire-dpdt",
    description: "every codec, DPDT to_delay selection, qemu termination",
    codecs: ALL_CODECS,
    policy: { selection: "dpdt", termination: "qemu", nonConvergence: "force-stop" },
    downtimeLimitMs: 300,
  },
  {
    name: "pagewire-xen",
    description: "every codec, Xen to_skip selection (skips pages dirtied again since the harvest), qemu termination",
    codecs: ALL_CODECS,
    policy: { selection: "xen-to-skip", termination: "qemu", nonConvergence: "force-stop" },
    downtimeLimitMs: 300,
  },
];

export function findPreset(name: string): Preset | undefined {
  return PRESETS.find((p) => p.name === name);
}
