// Synthetic guest workloads. A workload is a
// deterministic function of its seed and the guest time it has run: the simulator
// advances it in virtual time, a Worker guest advances it in wall time.

/** Where a workload writes: guest RAM with a dirty log (WasmGuestMemory implements it). */
export interface GuestWriter {
  readonly pageCount: number;
  /** Copies `data` to guest byte `offset` and marks the touched pages dirty. */
  write(offset: number, data: Uint8Array): void;
}

export interface Workload {
  /** Registry name (idle, cpu, working-set, hot-cold, sequential, net-ring, write-storm). */
  readonly name: string;
  /** Fills memory with the workload's initial content (the guest as booted). */
  init(mem: GuestWriter): void;
  /** Runs the guest for `seconds` of guest time, writing into `mem`. */
  run(seconds: number, mem: GuestWriter): void;
}
