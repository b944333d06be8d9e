// The codecs, in pipeline order (DESIGN.md, Codecs): a page takes the first stage that
// applies, raw when none does (XBZRLE, RLE and LZ all run, LZ only under its budget; the
// shortest encoding wins, the earlier on a tie). Everything that names codecs derives from this table: the CodecOptions
// flags, the encode counts and round columns, the handshake features, the report's
// counters and "every codec on".
//
//   name       record   feature  count    counter (report.ram; QEMU's name where one exists)
//   unchanged  —        —        skipped  skipped-unchanged   source only: the page gets no record
//   zero       ZERO     zero     zero     duplicate
//   dedup      DEDUP    dedup    dedup    dedup-pages
//   xbzrle     XBZRLE   xbzrle   xbzrle   xbzrle-pages
//   rle        RLE      rle      rle      rle-pages
//   lz         LZ       lz       lz       lz-pages
//   raw        RAW      —        raw      normal              always on: the fallback
//
// `count` is the key in EncodeCounts and the report's per-round column; `skipped` also
// counts pages XBZRLE found identical to the cached copy (nothing to send either).
// The record kinds are defined by the wire (wire/page-record.ts); the wire does not
// import this table.
import { RecordKind } from "../wire/page-record.js";

export const CODECS = [
  { name: "unchanged", record: null, feature: null, switchable: true, count: "skipped", counter: "skipped-unchanged" },
  { name: "zero", record: RecordKind.ZERO, feature: "zero", switchable: true, count: "zero", counter: "duplicate" },
  {
    name: "dedup",
    record: RecordKind.DEDUP,
    feature: "dedup",
    switchable: true,
    count: "dedup",
    counter: "dedup-pages",
  },
  {
    name: "xbzrle",
    record: RecordKind.XBZRLE,
    feature: "xbzrle",
    switchable: true,
    count: "xbzrle",
    counter: "xbzrle-pages",
  },
  { name: "rle", record: RecordKind.RLE, feature: "rle", switchable: true, count: "rle", counter: "rle-pages" },
  { name: "lz", record: RecordKind.LZ, feature: "lz", switchable: true, count: "lz", counter: "lz-pages" },
  { name: "raw", record: RecordKind.RAW, feature: null, switchable: false, count: "raw", counter: "normal" },
] as const;

export type Codec = (typeof CODECS)[number];
export type CodecName = Codec["name"];
/** Codecs that produce page records (all but unchanged). */
export type RecordCodec = Extract<Codec, { record: RecordKind }>;
/** Codecs a CodecOptions flag switches on and off (all but raw). */
export type SwitchableCodec = Extract<Codec, { switchable: true }>["name"];
/** Codecs the destination must accept in the handshake before the source uses them. */
export type NegotiatedCodec = Extract<Codec, { feature: string }>;
export type CodecFeature = NegotiatedCodec["feature"];
/** Keys of EncodeCounts, and the report's per-round columns by encoding. */
export type CountColumn = Codec["count"];
/** Names of the report's per-codec ram counters. */
export type CodecCounter = Codec["counter"];

/** One flag per switchable codec; a codec left undefined is on. */
export type CodecFlags = { [N in SwitchableCodec]?: boolean };
/** Counts by outcome for one batch or round. */
export type EncodeCounts = Record<CountColumn, number>;

export const CODEC_NAMES: readonly CodecName[] = CODECS.map((c) => c.name);
export const SWITCHABLE_CODECS: readonly SwitchableCodec[] = CODECS.filter(
  (c): c is Extract<Codec, { switchable: true }> => c.switchable,
).map((c) => c.name);
export const RECORD_CODECS: readonly RecordCodec[] = CODECS.filter((c): c is RecordCodec => c.record !== null);
export const CODEC_FEATURES: readonly CodecFeature[] = CODECS.filter(
  (c): c is NegotiatedCodec => c.feature !== null,
).map((c) => c.feature);
export const COUNT_COLUMNS: readonly CountColumn[] = CODECS.map((c) => c.count);
export const CODEC_COUNTERS: readonly CodecCounter[] = CODECS.map((c) => c.counter);

/** The codec that produces records of `kind`. */
export function findRecordCodec(kind: RecordKind): RecordCodec {
  const codec = RECORD_CODECS.find((c) => c.record === kind);
  if (!codec) throw new RangeError(`no codec produces record kind ${kind}`);
  return codec;
}

export function isSwitchableCodec(name: string): name is SwitchableCodec {
  return (SWITCHABLE_CODECS as readonly string[]).includes(name);
}

/** Flags with the listed codecs on and every other switchable codec off. */
export function selectCodecs(on: readonly SwitchableCodec[]): Required<CodecFlags> {
  return Object.fromEntries(SWITCHABLE_CODECS.map((name) => [name, on.includes(name)])) as Required<CodecFlags>;
}

/** Flags with every codec on. */
export function selectAllCodecs(): Required<CodecFlags> {
  return selectCodecs(SWITCHABLE_CODECS);
}

export function emptyCounts(): EncodeCounts {
  return Object.fromEntries(COUNT_COLUMNS.map((column) => [column, 0])) as EncodeCounts;
}

/** Adds `from` into `into`, column by column. */
export function addCounts(into: EncodeCounts, from: Readonly<EncodeCounts>): void {
  for (const column of COUNT_COLUMNS) into[column] += from[column];
}

/** Pages that got a record (every column but skipped). */
export function countRecords(counts: Readonly<EncodeCounts>): number {
  let n = 0;
  for (const c of RECORD_CODECS) n += counts[c.count];
  return n;
}

export function emptyCodecCounters(): Record<CodecCounter, number> {
  return Object.fromEntries(CODEC_COUNTERS.map((counter) => [counter, 0])) as Record<CodecCounter, number>;
}

/** Adds a batch's counts to the report's per-codec counters (duplicate += zero, normal += raw, …). */
export function addCodecCounters(counters: Record<CodecCounter, number>, counts: Readonly<EncodeCounts>): void {
  for (const c of CODECS) counters[c.counter] += counts[c.count];
}

/** Codec features a source with these flags offers in its HELLO: every codec not switched off. */
export function offerCodecFeatures(flags: Readonly<CodecFlags>): CodecFeature[] {
  return CODECS.filter((c): c is NegotiatedCodec => c.feature !== null && flags[c.name] !== false).map(
    (c) => c.feature,
  );
}

/** Flags for the codecs the handshake negotiates: on when the destination accepted its feature. */
export function negotiateCodecs(accepted: readonly string[]): { [N in NegotiatedCodec["name"]]: boolean } {
  return Object.fromEntries(
    CODECS.filter((c): c is NegotiatedCodec => c.feature !== null).map((c) => [c.name, accepted.includes(c.feature)]),
  ) as { [N in NegotiatedCodec["name"]]: boolean };
}
