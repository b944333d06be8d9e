// Every `pagewire` sub-command, in the order `pagewire --help` lists them.
import type { Command } from "../usage.js";
import { benchCommand } from "./bench.js";
import { compareCommand } from "./compare.js";
import { migrateQemuCommand } from "./migrate-qemu.js";
import { qemuProxyCommand } from "./qemu-proxy.js";
import { receiveCommand } from "./receive.js";
import { recordCommand } from "./record.js";
import { resolveCommand } from "./resolve.js";
import { selfcheckCommand } from "./selfcheck.js";
import { sendCommand } from "./send.js";
import { simulateCommand } from "./simulate.js";

export const COMMANDS: readonly Command[] = [
  selfcheckCommand,
  simulateCommand,
  compareCommand,
  benchCommand,
  recordCommand,
  sendCommand,
  receiveCommand,
  resolveCommand,
  migrateQemuCommand,
  qemuProxyCommand,
];
