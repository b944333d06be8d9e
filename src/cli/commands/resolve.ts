import { lockFile } from "../../memory/file-lock.js";
import { FileMemory, inDoubtPath } from "../../memory/file-memory.js";
import { parseOptions } from "../args.js";
import { UsageError, type Command } from "../usage.js";

const HELP = `usage: pagewire resolve --out FILE (--commit | --abort)

Settles a migration that 'pagewire receive' left in doubt (exit code 3): the connection
failed after the receiver acknowledged the commit and the sender did not come back to
say how it ended. The received memory waits in FILE.in-doubt; ask the sender's side:

  --commit   the sender committed ('pagewire send' said "in doubt … committed"):
             FILE.in-doubt becomes FILE and the guest runs from it
  --abort    the sender resumed its guest (or never committed): FILE.in-doubt is removed

Never commit here when the sender's guest runs again: two copies would run.
Refuses to commit memory that still misses pages (post-copy cut short).

Exit 0 when settled, 1 on failure (one line), 2 on usage errors.`;

export const resolveCommand: Command = {
  name: "resolve",
  summary: "settle a migration left in doubt: commit or discard what the receiver kept",
  help: HELP,
  async run(argv) {
    const o = parseOptions(argv, { out: { type: "string" }, commit: { type: "boolean" }, abort: { type: "boolean" } });
    if (!o.out) throw new UsageError("--out FILE is required");
    if (!!o.commit === !!o.abort) throw new UsageError("give exactly one of --commit and --abort");
    const lock = lockFile(o.out); // no receiver may be writing FILE meanwhile
    // a killed receiver's temporary is garbage (prepared memory also has its in-doubt name)
    if (lock.staleOwner !== null) FileMemory.removeTemporaries(o.out);
    try {
      FileMemory.resolveInDoubt(o.out, o.commit ? "commit" : "abort");
    } finally {
      lock.release();
    }
    console.log(o.commit ? `committed ${inDoubtPath(o.out)} as ${o.out}` : `discarded ${inDoubtPath(o.out)}`);
    return 0;
  },
};
