// ^C (SIGINT) or SIGTERM during a migration command cancels it the engine's way: before the
// decision the migration aborts with CANCELLED and the source runs the guest on; after it
// the signal is ignored (the destination owns the guest) and the command says so. A second
// ^C leaves at once (exit 130), whatever state that leaves.
export interface Interrupt {
  signal: AbortSignal;
  dispose(): void;
}

/**
 * Listens for SIGINT/SIGTERM until dispose(). `decided()` tells whether the decision is
 * already taken (then a cancel changes nothing, and the message says so).
 */
export function cancelOnInterrupt(command: string, decided: () => boolean): Interrupt {
  const ctl = new AbortController();
  let count = 0;
  const onSignal = (name: NodeJS.Signals) => {
    count++;
    if (count > 1) {
      process.stderr.write(`\npagewire ${command}: ${name} again: leaving now\n`);
      process.exit(130);
    }
    process.stderr.write(
      decided()
        ? `\npagewire ${command}: ${name}: too late to cancel, the destination owns the guest; finishing (${name} again to leave now)\n`
        : `\npagewire ${command}: ${name}: cancelling; the source keeps the guest (${name} again to leave now)\n`,
    );
    ctl.abort(new Error(`${name} received`));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    signal: ctl.signal,
    dispose() {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}
