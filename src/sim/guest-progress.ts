// What the migration cost the guest, in guest work: over the migration's virtual time the
// guest would have done `elapsed` seconds of work without migration; it did the work it
// ran on the source before the pause (slowed by any throttle), and on the destination
// after the switch-over (stalled by post-copy faults). The difference is the application
// slowdown the migration caused.
//
//   work      = source work (Σ dt · (1 − throttle) until the pause) + destination work (quanta run)
//   progress  = work / elapsed                        (1: no slowdown)
//   lost      = elapsed − work = throttle losses + downtime + fault stalls
//   downtime  = the guest runs nowhere: from the pause to the start on the destination
//               (pre-copy: the activation; post-copy and hybrid: POSTCOPY_START's arrival,
//               so the switch-over is included)
import type { DestinationGuestStats } from "./destination-guest.js";

export interface GuestProgress {
  /** Virtual seconds from the start of the migration to its end. */
  elapsedSeconds: number;
  /** Guest seconds of work done over that time, source and destination together. */
  workSeconds: number;
  sourceWorkSeconds: number;
  destinationWorkSeconds: number;
  /** workSeconds / elapsedSeconds. */
  progress: number;
  /** elapsedSeconds − workSeconds. */
  lostSeconds: number;
  /** The guest ran nowhere: the pause to the start on the destination, ms. */
  downtimeMs: number;
  /** Virtual time the destination guest waited for missing pages, ms. */
  faultStallMs: number;
  faults: number;
  maxFaultStallMs: number;
}

export function guestProgress(
  elapsedSeconds: number,
  sourceWorkSeconds: number,
  pausedAt: number,
  dest: DestinationGuestStats,
  destinationWorkSeconds: number,
): GuestProgress {
  const work = sourceWorkSeconds + destinationWorkSeconds;
  const started = Number.isFinite(dest.startedAt) ? dest.startedAt : elapsedSeconds;
  const paused = Number.isFinite(pausedAt) ? pausedAt : elapsedSeconds;
  return {
    elapsedSeconds,
    workSeconds: work,
    sourceWorkSeconds,
    destinationWorkSeconds,
    progress: elapsedSeconds > 0 ? work / elapsedSeconds : 1,
    lostSeconds: elapsedSeconds - work,
    downtimeMs: Math.max(0, started - paused) * 1000,
    faultStallMs: dest.stallSeconds * 1000,
    faults: dest.faults,
    maxFaultStallMs: dest.maxStallSeconds * 1000,
  };
}
