import type { DirtyBitmap } from "../../kernel/dirty-bitmap.js";
import type { SelectionContext } from "../types.js";
import { SelectionPolicyBase } from "./base.js";

/**
 * Plain pre-copy: every round sends every dirty page (the whole memory in round 0),
 * nothing is deferred. The baseline every other policy is compared with.
 * // see: Clark et al. 2005, "Live Migration of Virtual Machines" (NSDI); QEMU migration/ram.c
 */
export class VanillaSelection extends SelectionPolicyBase {
  static readonly policyName = "vanilla";
  static readonly description = "send every dirty page every round";
  readonly name = VanillaSelection.policyName;

  protected choose(ctx: SelectionContext, send: DirtyBitmap): void {
    send.copyFrom(ctx.dirty);
  }
}
