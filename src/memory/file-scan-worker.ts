// The entry of a hash-scan Worker (file-scan-workers.ts): its own kernel on an arena of the
// main thread's shared memory and its own descriptor of the RAM file. Per scan it claims
// chunks of pages from the shared counter until none are left, reads each in windows into
// its arena and runs the scan kernel into the main thread's hash table and bitmap.
import { PagewireError } from "../errors.js";
import { PAGE_SIZE } from "../kernel/abi.js";
import type { Kernel } from "../kernel/kernel.js";
import { createKernel } from "../kernel/loader.js";
import { parentPort } from "../util/worker.js";
import { FileMemory } from "./file-memory.js";
import { SCAN_CHUNK_PAGES, SCAN_WINDOW_PAGES, type FromScanWorker, type ToScanWorker } from "./file-scan-workers.js";

const parent = await parentPort();
const post = (m: FromScanWorker) => parent.post(m);
let state: { k: Kernel; file: FileMemory; pageCount: number; window: number; next: Int32Array } | null = null;

parent.onMessage((message) => {
  const m = message as ToScanWorker;
  handle(m).catch((err) => {
    const e = err as { code?: string; message?: string };
    post({ op: "error", code: e?.code ?? "SCAN_WORKER", message: e?.message ?? String(err) });
  });
});

async function handle(m: ToScanWorker): Promise<void> {
  if (m.op === "init") {
    const k = await createKernel({ arena: m.arena });
    const file = FileMemory.open(m.path);
    if (file.pageCount < m.pageCount) {
      file.close();
      throw new PagewireError("FILE_SIZE", `${m.path} has ${file.pageCount} pages, the scan covers ${m.pageCount}`);
    }
    state = {
      k,
      file,
      pageCount: m.pageCount,
      window: k.alloc(SCAN_WINDOW_PAGES * PAGE_SIZE, 64).ptr,
      next: new Int32Array(m.next),
    };
    post({ op: "ready" });
    return;
  }
  if (!state) throw new PagewireError("SCAN_WORKER", `scan worker: ${m.op} before init`);
  const { k, file, pageCount, window, next } = state;
  let changed = 0;
  for (;;) {
    const first = Atomics.add(next, 0, SCAN_CHUNK_PAGES);
    if (first >= pageCount) break;
    const end = Math.min(first + SCAN_CHUNK_PAGES, pageCount);
    for (let p = first; p < end; p += SCAN_WINDOW_PAGES) {
      const n = Math.min(SCAN_WINDOW_PAGES, end - p);
      // a view per read: the main thread may have grown the memory
      file.readRange(p, n, new Uint8Array(k.memory.buffer, window, n * PAGE_SIZE));
      changed += k.raw.scanChangedPages(window, n, m.hashes + p * 16, m.bits, p, m.mark, m.seedLo, m.seedHi) >>> 0;
    }
  }
  post({ op: "scanned", changed });
}
