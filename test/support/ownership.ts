// The fault matrix's tools: a link that can be cut after any frame, a switchboard that
// plays the destination's listener for reconnections, and the one checker every fault
// case ends in.
//
// The invariant: at every instant at most one side runs the guest, and the side that holds
// the newest memory is never discarded. Allowed outcomes:
//   (a) source running, destination discarded                (failure before the decision)
//   (b) destination running, source stopped                  (after it)
//   (c) both stopped, in doubt                               (only without reconnection; resolve() then gives a or b)
import { expect } from "vitest";
import type { Transport } from "../../src/transport/transport.js";
import { createInProcessPair } from "../../src/transport/in-process.js";

/**
 * Frames both ways share one counter. "cut": after `at` frames the link closes under both
 * ends. "flip": frame number `at` arrives with one byte flipped (the link goes on).
 */
export function cuttablePair(
  at: number,
  fault: "cut" | "flip" = "cut",
): { source: Transport; destination: Transport; frames: () => number } {
  const cutAfter = fault === "cut" ? at : Infinity;
  const [a, b] = createInProcessPair();
  let frames = 0;
  const wrap = (t: Transport, peer: Transport): Transport => ({
    get bytesSent() {
      return t.bytesSent;
    },
    get bytesReceived() {
      return t.bytesReceived;
    },
    async send(frame) {
      if (frames >= cutAfter) {
        t.close();
        peer.close();
        throw Object.assign(new Error("link cut"), { code: "CONNECTION_CLOSED" });
      }
      if (fault === "flip" && frames === at) (frame = frame.slice()), (frame[Math.floor(frame.length / 2)] ^= 0x10);
      frames++;
      await t.send(frame);
      if (frames >= cutAfter) {
        t.close();
        peer.close();
      }
    },
    receive: () => t.receive(),
    close: () => t.close(),
  });
  return { source: wrap(a, b), destination: wrap(b, a), frames: () => frames };
}

/** The destination's listener for new connections: `connect` is the source's reconnect. */
export class Switchboard {
  #queue: Transport[] = [];
  #waiters: Array<(t: Transport) => void> = [];
  #closed = false;
  connects = 0;

  /** Source side: a new connection, refused once the destination stopped listening. */
  connect = async (): Promise<Transport> => {
    if (this.#closed) throw Object.assign(new Error("connection refused"), { code: "CONNECTION_CLOSED" });
    this.connects++;
    const [a, b] = createInProcessPair();
    const w = this.#waiters.shift();
    if (w) w(b);
    else this.#queue.push(b);
    return a;
  };

  /** Destination side: the next connection. */
  accept = (): Promise<Transport> => {
    const t = this.#queue.shift();
    if (t) return Promise.resolve(t);
    return new Promise((resolve) => this.#waiters.push(resolve));
  };

  /** The destination stopped listening: queued connections are dropped, new ones refused. */
  close(): void {
    this.#closed = true;
    for (const t of this.#queue.splice(0)) t.close();
  }
}

/** Who runs the guest, recorded as the callbacks fire. */
export class OwnershipLog {
  sourceRunning = true;
  destinationRunning = false;
  destinationDiscarded = false;
  destinationCommitted = false;
  readonly events: string[] = [];

  #check(): void {
    expect(
      this.sourceRunning && this.destinationRunning,
      `both sides run the guest after: ${this.events.join(", ")}`,
    ).toBe(false);
  }

  pause = () => {
    this.events.push("source pause");
    this.sourceRunning = false;
  };
  resume = () => {
    this.events.push("source resume");
    this.sourceRunning = true;
    this.#check();
  };
  activate = () => {
    this.events.push("destination activate");
    expect(this.destinationDiscarded, "a discarded destination activated").toBe(false);
    this.destinationRunning = true;
    this.#check();
  };
  commit = async () => {
    this.events.push("destination commit");
    this.destinationCommitted = true;
  };
  discard = async () => {
    this.events.push("destination discard");
    expect(this.destinationRunning, "the destination discarded memory its guest ran on").toBe(false);
    this.destinationDiscarded = true;
  };
}

export type Outcome = "a" | "b" | "c";

/**
 * The shared checker: which allowed outcome a finished case is in. `sourceIntact`: the
 * source's memory equals what it was at the pause; `destinationHasNewest`: the
 * destination's memory equals the source's at the pause plus its own guest's writes.
 */
export function checkOutcome(
  log: OwnershipLog,
  memory: { sourceIntact: boolean; destinationHasNewest: boolean },
): Outcome {
  const where = log.events.join(", ");
  expect(log.sourceRunning && log.destinationRunning, `both run: ${where}`).toBe(false);
  expect(memory.sourceIntact, `source memory changed: ${where}`).toBe(true);
  if (log.sourceRunning) {
    expect(log.destinationRunning, where).toBe(false);
    return "a";
  }
  if (log.destinationRunning) {
    expect(memory.destinationHasNewest, `the running destination lacks the newest memory: ${where}`).toBe(true);
    expect(log.destinationCommitted || log.events.includes("destination activate"), where).toBe(true);
    return "b";
  }
  // neither runs: in doubt; nothing may have been discarded that holds the newest memory
  return "c";
}
