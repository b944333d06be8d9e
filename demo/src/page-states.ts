// What a cell of each memory map means: the source map follows a page through the dirty
// cycle; the destination map shows what the destination applied. From the first "sent" /
// "received" state on, the state is that state + the index of the record's codec in
// RECORD_CODECS (the encoding the page last travelled as).
import { RECORD_CODECS } from "../../src/codec/codecs.js";

export const SourceState = {
  UNSENT: 0,
  CLEAN: 1,
  DIRTY: 2,
  DEFERRED: 3,
  SENT: 4,
} as const;

export const DestState = {
  /** No record of this page applied yet. */
  ABSENT: 0,
  /** Applied in an earlier round (what the destination holds). */
  HELD: 1,
  /** Post-copy: the guest runs here and this page is not here yet. */
  MISSING: 2,
  /** Post-copy: the running guest touched it while missing and fetched it on demand. */
  FAULT: 3,
  RECEIVED: 4,
} as const;

const CODEC_NAMES = RECORD_CODECS.map((c) => c.name);

/** A map's legend: name, colour and how much a cell of grouped pages prefers it (higher wins). */
export interface StateStyle {
  name: string;
  color: string;
  rank: number;
  /** A codec state: "sent (received) this round as …". */
  codec?: boolean;
}

// light tones, so that red (dirty) and pink (fault) stand out among the pages sent
const CODEC_COLORS: Record<string, string> = {
  zero: "#5b6275",
  dedup: "#c7a2e8",
  xbzrle: "#7ed3c2",
  rle: "#8edcec",
  lz: "#aabdff",
  raw: "#7fa6f7",
};
const CODEC_RANK: Record<string, number> = { zero: 2, raw: 3, lz: 4, rle: 5, dedup: 6, xbzrle: 7 };
const codecStyles = (): StateStyle[] =>
  CODEC_NAMES.map((name) => ({
    name,
    color: CODEC_COLORS[name] ?? "#3e7bfa",
    rank: CODEC_RANK[name] ?? 3,
    codec: true,
  }));

export const SOURCE_STYLES: StateStyle[] = [
  { name: "not sent yet", color: "#d5d9e0", rank: 0 },
  { name: "sent, unchanged", color: "#b9e3c2", rank: 1 },
  { name: "dirty: written since sent", color: "#e0161d", rank: 9 },
  { name: "deferred by the policy", color: "#f5a524", rank: 8 },
  ...codecStyles(),
];

export const DEST_STYLES: StateStyle[] = [
  { name: "not here yet", color: "#d5d9e0", rank: 0 },
  { name: "held from an earlier round", color: "#b9e3c2", rank: 1 },
  { name: "missing (post-copy)", color: "#6b7080", rank: 8 },
  { name: "fault: fetched on demand", color: "#ff2e93", rank: 10 },
  ...codecStyles(),
];

/** The codec colour by name (the round bars use the same colours as the maps). */
export function codecColor(name: string): string {
  return CODEC_COLORS[name] ?? "#9aa3b2";
}

/** The map state of a page sent (or received) as a record of each kind, by RecordKind. */
export function stateOfKind(base: number): number[] {
  const byKind: number[] = [];
  RECORD_CODECS.forEach((c, i) => (byKind[c.record] = base + i));
  return byKind;
}

/** Pages per state, for the live totals and the stage texts. */
export function countStates(states: Uint8Array, ...wanted: number[]): number {
  const want = new Uint8Array(256);
  for (const w of wanted) want[w] = 1;
  let n = 0;
  for (let i = 0; i < states.length; i++) n += want[states[i]];
  return n;
}
