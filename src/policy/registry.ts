// Every policy by kind and name, so the engine, the CLI and the demo select them by name.
import { PagewireRangeError } from "../errors.js";
import { AdaptiveTermination } from "./termination/adaptive.js";
import { MaxRoundsTermination } from "./termination/max-rounds.js";
import { QemuTermination } from "./termination/qemu.js";
import { XenLegacyTermination } from "./termination/xen-legacy.js";
import { XenTermination } from "./termination/xen.js";
import { ForceStopNonConvergence } from "./non-convergence/force-stop.js";
import { PostcopyNonConvergence } from "./non-convergence/postcopy.js";
import { ThrottleNonConvergence } from "./non-convergence/throttle.js";
import { BlockOrderedSelection } from "./selection/block-ordered.js";
import { DpdtSelection } from "./selection/dpdt.js";
import { HistoryThresholdSelection } from "./selection/history-threshold.js";
import { MicrowiperSelection } from "./selection/microwiper.js";
import { ReuseDistanceSelection } from "./selection/reuse-distance.js";
import { SecondChanceSelection } from "./selection/second-chance.js";
import { VanillaSelection } from "./selection/vanilla.js";
import { WeightedHotSelection } from "./selection/weighted-hot.js";
import { XenToSkipSelection } from "./selection/xen-to-skip.js";
import type { NonConvergencePolicy, PageSelectionPolicy, Policy, PolicyKind, TerminationPolicy } from "./types.js";

/** A policy as listed: its kind, name and one-line rule. */
export interface PolicyInfo {
  kind: PolicyKind;
  name: string;
  description: string;
  /** Selection policies that count modifications since the VM started (types.ts `historySinceStart`). */
  historySinceStart?: boolean;
}

interface PolicyClass<P extends Policy> {
  readonly policyName: string;
  readonly description: string;
  readonly historySinceStart?: boolean;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  // biome-ignore lint/suspicious/noExplicitAny: each policy class takes its own options type
  new (options?: any): P;
}

const SELECTION: PolicyClass<PageSelectionPolicy>[] = [
  VanillaSelection,
  XenToSkipSelection,
  ReuseDistanceSelection,
  DpdtSelection,
  SecondChanceSelection,
  HistoryThresholdSelection,
  BlockOrderedSelection,
  MicrowiperSelection,
  WeightedHotSelection,
];
const TERMINATION: PolicyClass<TerminationPolicy>[] = [
  QemuTermination,
  XenTermination,
  XenLegacyTermination,
  MaxRoundsTermination,
  AdaptiveTermination,
];
const NON_CONVERGENCE: PolicyClass<NonConvergencePolicy>[] = [
  ThrottleNonConvergence,
  PostcopyNonConvergence,
  ForceStopNonConvergence,
];

const BY_KIND: Record<PolicyKind, PolicyClass<Policy>[]> = {
  selection: SELECTION,
  termination: TERMINATION,
  "non-convergence": NON_CONVERGENCE,
};

/** Every policy with its kind and one-line rule, selection first. */
export function listPolicies(kind?: PolicyKind): PolicyInfo[] {
  const kinds = kind ? [kind] : (Object.keys(BY_KIND) as PolicyKind[]);
  return kinds.flatMap((k) =>
    BY_KIND[k].map((c) => ({
      kind: k,
      name: c.policyName,
      description: c.description,
      ...(c.historySinceStart ? { historySinceStart: true } : {}),
    })),
  );
}

/**
 * A new policy instance by kind and name, with the policy's own options (see each
 * class). Throws `UNKNOWN_POLICY` listing the valid names.
 */
export function createPolicy(kind: "selection", name: string, options?: object): PageSelectionPolicy;
export function createPolicy(kind: "termination", name: string, options?: object): TerminationPolicy;
export function createPolicy(kind: "non-convergence", name: string, options?: object): NonConvergencePolicy;
export function createPolicy(kind: PolicyKind, name: string, options?: object): Policy;
export function createPolicy(kind: PolicyKind, name: string, options: object = {}): Policy {
  const classes = BY_KIND[kind];
  if (!classes)
    throw new PagewireRangeError(
      "UNKNOWN_POLICY",
      `unknown policy kind "${kind}" (kinds: ${Object.keys(BY_KIND).join(", ")})`,
    );
  const c = classes.find((x) => x.policyName === name);
  if (!c)
    throw new PagewireRangeError(
      "UNKNOWN_POLICY",
      `unknown ${kind} policy "${name}" (${classes.length} known: ${classes.map((x) => x.policyName).join(", ")})`,
    );
  return new c(options);
}
