// Every workload by name, so the simulator, the CLI and the demo create them by name.
import { PagewireRangeError } from "../errors.js";
import { CpuWorkload } from "./cpu.js";
import { HotColdWorkload } from "./hot-cold.js";
import { IdleWorkload } from "./idle.js";
import { NetRingWorkload } from "./net-ring.js";
import { SequentialWorkload } from "./sequential.js";
import type { WorkloadOptions } from "./synthetic.js";
import type { Workload } from "./workload.js";
import { WorkingSetWorkload } from "./working-set.js";
import { WriteStormWorkload } from "./write-storm.js";

export interface WorkloadInfo {
  name: string;
  description: string;
}

const WORKLOADS: Array<WorkloadInfo & { create: (o: WorkloadOptions & Record<string, unknown>) => Workload }> = [
  {
    name: "idle",
    description: "idle guest: timers and bookkeeping in a few pages, 80 pages/s",
    create: (o) => new IdleWorkload(o),
  },
  {
    name: "cpu",
    description: "CPU-bound (sysbench-like): 256-page working set of counters, 2000 pages/s",
    create: (o) => new CpuWorkload(o),
  },
  {
    name: "working-set",
    description: "random writes over a share of RAM (default 25 %), 20000 pages/s",
    create: (o) => new WorkingSetWorkload(o),
  },
  {
    name: "hot-cold",
    description: "Zipf(1.0) page popularity over half of RAM, 20000 pages/s",
    create: (o) => new HotColdWorkload(o),
  },
  {
    name: "sequential",
    description: "whole-page sequential scan over half of RAM, 10000 pages/s",
    create: (o) => new SequentialWorkload(o),
  },
  {
    name: "net-ring",
    description: "4 network rings of 2 MiB: 1500-byte packets, 8000 packets/s",
    create: (o) => new NetRingWorkload(o),
  },
  {
    name: "write-storm",
    description: "whole pages of random data over half of RAM, 60000 pages/s (does not converge at 1 Gbit/s)",
    create: (o) => new WriteStormWorkload(o),
  },
];

/** Every synthetic workload with a one-line description. */
export function listWorkloads(): WorkloadInfo[] {
  return WORKLOADS.map(({ name, description }) => ({ name, description }));
}

/** A new workload by name; options as in WorkloadOptions plus the workload's own. Throws UNKNOWN_WORKLOAD. */
export function createWorkload(name: string, options: WorkloadOptions & Record<string, unknown> = {}): Workload {
  const w = WORKLOADS.find((x) => x.name === name);
  if (!w)
    throw new PagewireRangeError(
      "UNKNOWN_WORKLOAD",
      `unknown workload "${name}" (${WORKLOADS.length} known: ${WORKLOADS.map((x) => x.name).join(", ")})`,
    );
  return w.create(options);
}
