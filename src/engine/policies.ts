// The three pre-copy policies of a migration, from names or instances.
import { createPolicy } from "../policy/registry.js";
import type { NonConvergencePolicy, PageSelectionPolicy, TerminationPolicy } from "../policy/types.js";

export interface PolicyChoice {
  selection?: string | PageSelectionPolicy;
  termination?: string | TerminationPolicy;
  nonConvergence?: string | NonConvergencePolicy;
  /** Constructor options per policy name. */
  options?: Record<string, object>;
}

export interface MigrationPolicies {
  selection: PageSelectionPolicy;
  termination: TerminationPolicy;
  /** Absent: QEMU's default without auto-converge (iterate until termination or maxRounds). */
  nonConvergence?: NonConvergencePolicy;
}

/** Builds the policies; `defaultSelection` is auto mode's choice (default vanilla). */
export function resolvePolicies(p: PolicyChoice = {}, defaultSelection = "vanilla"): MigrationPolicies {
  const pick = <T>(
    kind: "selection" | "termination" | "non-convergence",
    v: string | T | undefined,
    fallback: string,
  ): T => {
    if (typeof v === "object" && v) return v;
    const name = (v as string | undefined) ?? fallback;
    return createPolicy(kind, name, p.options?.[name] ?? {}) as T;
  };
  return {
    selection: pick<PageSelectionPolicy>("selection", p.selection, defaultSelection),
    termination: pick<TerminationPolicy>("termination", p.termination, "qemu"),
    nonConvergence:
      p.nonConvergence === undefined
        ? undefined
        : pick<NonConvergencePolicy>("non-convergence", p.nonConvergence, "force-stop"),
  };
}
