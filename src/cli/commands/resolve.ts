import { lockFile } from "../../memory/file-lock.js";
import { FileMemory, inDoubtPath } from "../../memory/file-memory.js";
import { defineCommand } from "../command.js";
import { UsageError } from "../usage.js";

const ABOUT = `Settles a migration that 'pagewire receive' left in doubt (exit code 3): the connection
failed after the receiver acknowledged the commit and the sender did not come back to
say how it ended. The received memory waits in FILE.in-doubt; ask the sender's side
whether it committed (--commit) or resumed its guest (--abort).`;

const EPILOGUE = `Never commit here when the sender's guest runs again: two copies would run.
Refuses to commit memory that still misses pages (post-copy cut short).

Exit 0 when settled, 1 on failure (one line), 2 on usage errors.`;

export const resolveCommand = defineCommand({
  name: "resolve",
  summary: "settle a migration left in doubt: commit or discard what the receiver kept",
  usage: "usage: pagewire resolve --out FILE (--commit | --abort)",
  about: ABOUT,
  flags: {
    out: { help: "the --out of the 'pagewire receive' that ended in doubt" },
    commit: {
      help: "the sender committed ('pagewire send' said \"in doubt … committed\"): FILE.in-doubt becomes FILE and the guest runs from it",
    },
    abort: { help: "the sender resumed its guest (or never committed): FILE.in-doubt is removed" },
  },
  epilogue: EPILOGUE,
  async run(o) {
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
});
