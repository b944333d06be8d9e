import { readFileSync } from "node:fs";
import { MigrationDestination } from "../../engine/destination.js";
import { loadKernel } from "../../kernel/loader.js";
import { FileMemory } from "../../memory/file-memory.js";
import { TcpListener } from "../../transport/tcp.js";
import { parseHostPort, parseOptions, readKey } from "../args.js";
import { UsageError, type Command } from "../usage.js";

const HELP = `usage: pagewire receive --listen HOST:PORT --out FILE [--key FILE] [--tls-cert FILE --tls-key FILE] [--json]

Waits for one migration on HOST:PORT and writes the received memory to FILE. FILE is
written only on commit: the memory goes to a temporary file beside it, renamed after the
whole-memory digest was verified; a failed migration leaves no FILE.

  --listen HOST:PORT   address to listen on (port 0: any free port, printed on stderr)
  --out FILE           where the memory goes
  --key FILE           pre-shared key (≥ 16 bytes): every frame must carry its HMAC-SHA256
  --tls-cert/--tls-key serve TLS with this certificate and key (PEM)
  --json               print the result as JSON

Exit 0 on commit, 1 on failure (one line), 2 on usage errors.`;

export const receiveCommand: Command = {
  name: "receive",
  summary: "receive one migration over TCP into a file (written only on commit)",
  help: HELP,
  async run(argv) {
    const o = parseOptions(argv, {
      listen: { type: "string" }, out: { type: "string" }, key: { type: "string" },
      "tls-cert": { type: "string" }, "tls-key": { type: "string" }, json: { type: "boolean" },
    });
    const [host, port] = parseHostPort(o.listen, "--listen");
    if (!o.out) throw new UsageError("--out FILE is required");
    if (!!o["tls-cert"] !== !!o["tls-key"]) throw new UsageError("--tls-cert and --tls-key go together");
    const key = readKey(o.key);
    const tls = o["tls-cert"] ? { cert: readFileSync(o["tls-cert"]), key: readFileSync(o["tls-key"]!) } : undefined;
    const k = await loadKernel();
    const listener = await TcpListener.listen(host, port, { tls });
    console.error(`pagewire receive: listening on ${host}:${listener.port}`);
    const transport = await listener.accept();
    listener.close(); // one migration per receive
    let memory: FileMemory | null = null;
    const out = o.out;
    const destination = new MigrationDestination({
      kernel: k, transport, key,
      memory: (pages) => (memory = FileMemory.createTemporary(out, pages)),
    });
    try {
      const result = await destination.receive();
      const summary = { committed: true, out, pages: result.pagesReceived, bytesReceived: result.bytesReceived, digest: result.digest, mode: result.mode, deviceStateBytes: result.deviceState.length };
      console.log(o.json ? JSON.stringify(summary) : `committed ${out}: ${summary.pages} page records, ${summary.bytesReceived} bytes received, digest ${summary.digest}`);
      return 0;
    } finally {
      (memory as FileMemory | null)?.close();
    }
  },
};
