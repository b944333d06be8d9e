// What each stage of a migration means, in a few sentences: the stage cards above the
// timeline (the current one lit as the run goes) and the one-line detail of the stage now.
import type { PhaseKind, PhaseSpan } from "./phases.js";

/** The mode a run actually uses (auto has chosen by the time pages move). */
export type RunMode = "precopy" | "postcopy" | "hybrid" | "stop-and-copy" | "auto";

export interface StageCard {
  kind: PhaseKind;
  title: string;
  /** The text, by the mode that runs (post-copy modes read differently at commit). */
  text(mode: RunMode): string;
  /** Does a run in `mode` go through this stage? */
  used(mode: RunMode): boolean;
}

const hasRounds = (m: RunMode) => m === "precopy" || m === "hybrid" || m === "auto";
const hasPostcopy = (m: RunMode) => m === "postcopy" || m === "hybrid";

export const STAGE_CARDS: StageCard[] = [
  {
    kind: "probe",
    title: "Probe (auto)",
    text: () =>
      "Auto mode first watches the guest for 200 ms: how fast it dirties pages, how many distinct pages it writes (working set), how many are zero or duplicates. It then replays what it saw in the simulator once per mode and picks the one with the best predicted total time, downtime and fault stalls.",
    used: (m) => m === "auto",
  },
  {
    kind: "setup",
    title: "Handshake",
    text: () =>
      "Source and destination agree on the protocol version, the guest's page count, the mode and the codecs both sides speak. No page moves yet.",
    used: () => true,
  },
  {
    kind: "round",
    title: "Pre-copy rounds",
    text: () =>
      "The guest keeps running on the source. Round 0 sends every page; each later round sends again what the guest dirtied meanwhile (red on the map). After each round the termination policy asks: would what is left fit the downtime limit at this bandwidth?",
    used: hasRounds,
  },
  {
    kind: "pause",
    title: "Pause",
    text: (m) =>
      hasPostcopy(m)
        ? "The guest stops on the source; downtime starts. Only the device state goes over and the list of pages the destination does not have yet: the switch is short, whatever is left."
        : m === "stop-and-copy"
          ? "Stop-and-copy: the guest stops on the source and downtime starts, then every page and the device state go over while nothing runs. Simple, and the downtime is the whole copy."
          : "Stop-and-copy: the guest stops on the source and downtime starts. A last look at the dirty log, then every page still dirty and the device state go over while nothing runs.",
    used: () => true,
  },
  {
    kind: "postcopy",
    title: "Post-copy",
    text: () =>
      "The guest already runs on the destination, with pages missing. Touching a missing page is a fault (pink on the destination map): the guest waits while that page is fetched first. The rest is pushed in the background.",
    used: hasPostcopy,
  },
  {
    kind: "commit",
    title: "Commit",
    text: (m) =>
      hasPostcopy(m)
        ? "Every page is at the destination. The source sends the digest of the guest's memory as it paused; the destination checks it and acknowledges. (The decision was taken at the switch: from then on only the destination could run the guest.)"
        : "The source sends the digest of the paused guest's memory; the destination checks every page against it, makes its copy durable and acknowledges. From that acknowledgement on the source never runs this guest again: the point of no return.",
    used: () => true,
  },
  {
    kind: "activation",
    title: "Activation",
    text: (m) =>
      hasPostcopy(m)
        ? "The source tells the destination the migration is over (ACTIVATE → ACTIVATED) and lets its copy go. The guest has been running here since the switch."
        : "The destination starts the guest (ACTIVATE → ACTIVATED) and downtime ends. The source lets its copy go.",
    used: () => true,
  },
];

/** What the stage running now is doing, in one line. */
export interface StageFacts {
  mode: RunMode;
  pages: number;
  /** Pages the source map shows dirty or deferred now (what the next round would send). */
  pending: number;
  /** Post-copy: pages the destination still misses, and faults so far. */
  missing: number;
  faults: number;
  /** Step mode is holding the run: what it holds before. */
  held: "round" | "pause" | null;
  /** The last termination or non-convergence decision, in words. */
  lastDecision: string | null;
}

export function stageDetail(span: PhaseSpan | null, f: StageFacts): string {
  if (!span) return "Press Start: the guest boots, then the migration begins.";
  const pages = (n: number) => `${n} page${n === 1 ? "" : "s"}`;
  if (f.held === "round")
    return `Round ${span.round ?? 0} is done. Held before the next step: the guest dirtied ${pages(f.pending)} meanwhile (red). Next round: the policy decides whether they go in another round or at the pause.`;
  if (f.held === "pause")
    return `Pre-copy is over${f.lastDecision ? ` (${f.lastDecision})` : ""}. Held before the pause: ${pages(f.pending)} still to send. Next: the guest stops.`;
  switch (span.kind) {
    case "probe":
      return "Measuring the guest for the mode choice…";
    case "setup":
      return "HELLO / WELCOME: agreeing on version, pages, mode and codecs…";
    case "round":
      return span.round === 0
        ? `Round 0: every one of the ${pages(f.pages)} goes once, while the guest keeps writing.`
        : `Round ${span.round}: sending the ${pages(span.pending ?? 0)} dirtied during round ${(span.round ?? 1) - 1}.`;
    case "pause":
      return f.mode === "postcopy" || f.mode === "hybrid"
        ? `Guest paused. Switching: ${pages(f.pending)} will be missing at the destination.`
        : `Guest paused: sending the last ${pages(f.pending)} and the device state.`;
    case "postcopy":
      return `Guest running at the destination: ${pages(f.missing)} still missing, ${f.faults} fault${f.faults === 1 ? "" : "s"} so far.`;
    case "commit":
      return "Digest sent; the destination verifies its memory…";
    case "activation":
      return "ACTIVATE sent; waiting for the destination to run the guest…";
  }
}
