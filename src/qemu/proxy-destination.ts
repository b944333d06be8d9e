// The qemu-proxy's destination half: pagewire's protocol in, a byte-valid QEMU stream out
// into the destination QEMU's -incoming (see proxy-source.ts for the picture).
//
//   PREAMBLE          → the stream's head, verbatim (QEMU opens its return path)
//   each round's end  → one PART section: every page whose content changed since QEMU last
//                       got it (the incremental digest's per-page hashes tell), ZERO or PAGE
//   COMPLETE verified → the END section, then the device state, EOF and VM description;
//                       QEMU loads them and answers SHUT 0 on its return path: prepared
//   ACTIVATE          → QMP cont: the guest runs here
//
// The destination QEMU must be started with -S: it then ends its load paused and runs only
// at pagewire's activation. One that started its guest by itself before the decision is
// stopped for good (QMP quit) and the migration fails, so the source runs on: a guest never
// runs on both sides. Before prepared, any failure closes QEMU's connection (its load fails
// and it exits): the destination is discarded.
import { writeFlushed } from "./flushed-write.js";
import type net from "node:net";
import { PagewireError } from "../errors.js";
import { MigrationDestination, type DestinationResult } from "../engine/destination.js";
import type { MigrationTimeouts } from "../engine/ownership.js";
import type { ChannelOptions } from "../engine/source-options.js";
import { createKernel } from "../kernel/loader.js";
import { WasmGuestMemory } from "../memory/wasm-guest-memory.js";
import { TcpListener, type TcpOptions } from "../transport/tcp.js";
import type { FrameKey } from "../wire/frame.js";
import { connectEndpoint, type QemuEndpoint } from "./endpoint.js";
import { QmpClient } from "./qmp.js";
import { QemuStreamError, QemuStreamParser, type QemuStreamHead } from "./qemu-stream.js";
import { RamSectionWriter } from "./ram-section-writer.js";
import { ReturnPathMessage, ReturnPathReader, returnPathValue } from "./return-path.js";

export interface QemuProxyDestinationOptions {
  /** pagewire's listener (the source proxy connects here). */
  listen: { host: string; port: number; tls?: TcpOptions["tls"] };
  /** The destination QEMU's -incoming. */
  incoming: QemuEndpoint;
  /** The destination QEMU's QMP socket: its state is checked, and `cont` runs the guest at activation. */
  qmp: string;
  key?: FrameKey;
  channels?: ChannelOptions;
  timeouts?: Partial<MigrationTimeouts>;
  /** How long QEMU may take to load the device state and answer SHUT, ms (default 60 000). */
  loadTimeoutMs?: number;
  /** Called once listening, with the bound port. */
  onListening?: (port: number) => void;
  log?: (line: string) => void;
  /** Cancels while receiving (CANCELLED; the source proxy aborts and its QEMU runs on). */
  signal?: AbortSignal;
  /** Called with pagewire's MigrationDestination once made (its events). */
  onDestination?: (destination: MigrationDestination) => void;
}

export interface QemuProxyDestinationResult {
  result: DestinationResult;
  head: QemuStreamHead;
  /** The stream written into the destination QEMU: bytes, RAM sections and page records. */
  stream: { bytes: number; sections: number; records: number };
}

/** Receives one proxied QEMU migration into the destination QEMU; see the file header. */
export async function proxyQemuDestination(o: QemuProxyDestinationOptions): Promise<QemuProxyDestinationResult> {
  const log = o.log ?? (() => {});
  const k = await createKernel();
  const qmp = await QmpClient.connect(o.qmp);
  let listener: TcpListener | null = null;
  let qemu: net.Socket | null = null;
  try {
    const status = await qmp.queryStatus();
    if (status.status !== "inmigrate")
      throw new PagewireError(
        "QEMU_STATE",
        `destination QEMU is '${status.status}', not 'inmigrate' (start it with -S -incoming …)`,
      );
    listener = await TcpListener.listen(o.listen.host, o.listen.port, { tls: o.listen.tls });
    o.onListening?.(listener.port);
    const l = listener;
    let shadow: WasmGuestMemory | null = null;
    let head = null as QemuStreamHead | null;
    let writer = null as RamSectionWriter | null;
    let given: Uint8Array | null = null; // pages QEMU got at least once
    let held: Uint32Array | null = null; // the hashes of what QEMU holds of each page
    let zeroHash: Uint32Array | null = null; // a page of zeros' hash in the digest table
    let written = 0;
    let sections = 0;
    let shut: number | null = null;
    let qemuError: unknown = null;
    let wake: (() => void) | null = null;
    const signal = () => {
      const w = wake;
      wake = null;
      w?.();
    };
    const check = () => {
      if (qemuError) throw qemuError;
    };
    // every write waits until its bytes left this process (flushed-write.ts): page bodies are views of the shadow
    const write = async (pieces: readonly Uint8Array[]) => {
      check();
      for (const p of pieces) written += p.length;
      await writeFlushed(qemu!, pieces).catch(() => {}); // a closed connection: qemuError says why
      check();
    };
    // pages written since the last section (in arrival order, each once): a section costs what
    // the round wrote, not a pass over the table. The first section covers every page (QEMU's
    // RAM must be whole, zeros included), and data channels' pages are not reported: then all.
    let touched: number[] | null = null;
    let isTouched: Uint8Array | null = null;
    const candidates = (n: number): ArrayLike<number> => {
      if (!touched || destination.dataChannels > 0) {
        touched = [];
        isTouched = new Uint8Array(n);
        return Uint32Array.from({ length: n }, (_, p) => p);
      }
      const list = Uint32Array.from(touched).sort();
      for (const p of list) isTouched![p] = 0;
      touched = [];
      return list;
    };
    // the pages whose content changed since QEMU last got them, as one RAM section
    const flush = async (completion: boolean) => {
      const n = shadow!.pageCount;
      const table = destination.pageHashes()!;
      const now = new Uint32Array(table.buffer, table.byteOffset, 4 * n);
      const pages: number[] = [];
      const list = candidates(n);
      for (let j = 0; j < list.length; j++) {
        const p = list[j];
        const i = 4 * p;
        if (
          given![p] &&
          now[i] === held![i] &&
          now[i + 1] === held![i + 1] &&
          now[i + 2] === held![i + 2] &&
          now[i + 3] === held![i + 3]
        )
          continue;
        given![p] = 1;
        held!.set(now.subarray(i, i + 4), i);
        pages.push(p);
      }
      if (!pages.length && !completion) return;
      // a page of zeros by its hash: no read of (shared, slow-to-copy) memory
      const isZero = (p: number) =>
        now[4 * p] === zeroHash![0] &&
        now[4 * p + 1] === zeroHash![1] &&
        now[4 * p + 2] === zeroHash![2] &&
        now[4 * p + 3] === zeroHash![3];
      sections++;
      const pieces = writer!.sectionPieces(pages, shadow!.bytes(), isZero, completion);
      await write(pieces);
    };
    const destination: MigrationDestination = new MigrationDestination({
      kernel: k,
      transport: await l.accept(),
      accept: () => l.accept(),
      key: o.key,
      channels: o.channels,
      timeouts: o.timeouts,
      memory: (n) => {
        shadow = new WasmGuestMemory(k, n);
        return Object.assign(shadow, {
          zeroed: true, // a fresh shadow: allocated zeroed
          prepare: async ({ deviceState }: { deviceState: Uint8Array }) => {
            if (!writer)
              throw new QemuStreamError("QEMU_STREAM_MALFORMED", "the source proxy sent no QEMU stream head");
            log("COMPLETE verified: completion section and device state to QEMU");
            await flush(true);
            await write([deviceState]);
            log("completion section and device state written");
            const deadline = performance.now() + (o.loadTimeoutMs ?? 60_000);
            while (shut === null) {
              check();
              const left = deadline - performance.now();
              if (left <= 0)
                throw new PagewireError(
                  "QEMU_LOAD_FAILED",
                  `the destination QEMU did not end its load within ${o.loadTimeoutMs ?? 60_000} ms`,
                );
              await new Promise<void>((r) => {
                wake = r;
                setTimeout(r, Math.min(left, 1000));
              });
            }
            if (shut !== 0)
              throw new PagewireError(
                "QEMU_LOAD_FAILED",
                `the destination QEMU failed to load the stream (SHUT ${shut})`,
              );
            const st = await qmp.queryStatus();
            if (st.running) {
              await qmp.quit().catch(() => {});
              throw new PagewireError(
                "QEMU_AUTOSTART",
                "the destination QEMU started the guest before the migration's decision: start it with -S; it was stopped and the source keeps the guest",
              );
            }
            log(`destination QEMU loaded the stream (${st.status})`);
          },
          discard: async () => {
            qemu?.destroy(); // its load fails: that QEMU exits without having run the guest
          },
        });
      },
      onPreamble: async (bytes) => {
        let got: QemuStreamHead | null = null;
        let headLength = -1;
        const p = new QemuStreamParser({
          onHead: (b, h) => {
            got = h;
            headLength = b.length;
          },
          onPage: () => {},
          onCompletion: () => {},
          onSectionEnd: () => {},
          onTail: () => {},
        });
        p.push(bytes);
        if (!got || headLength !== bytes.length)
          throw new QemuStreamError("QEMU_STREAM_MALFORMED", "the PREAMBLE is not exactly a QEMU stream head");
        head = got as QemuStreamHead;
        if (head.pageCount !== shadow!.pageCount)
          throw new QemuStreamError(
            "QEMU_STREAM_MALFORMED",
            `the stream head lists ${head.pageCount} pages, the migration ${shadow!.pageCount}`,
          );
        writer = new RamSectionWriter(head);
        given = new Uint8Array(head.pageCount);
        held = new Uint32Array(4 * head.pageCount);
        // before any page: the fresh (zeroed) shadow's table holds the zero page's hash everywhere
        const t = destination.pageHashes()!;
        zeroHash = new Uint32Array(t.buffer, t.byteOffset, 4).slice();
        qemu = await connectEndpoint(o.incoming);
        const rp = new ReturnPathReader((type, data) => {
          if (type === ReturnPathMessage.SHUT) {
            shut = returnPathValue(data);
            signal();
          }
        });
        qemu.on("data", (d: Buffer) => {
          try {
            rp.push(d);
          } catch (err) {
            qemuError ??= err;
            signal();
          }
        });
        qemu.on("error", () => {});
        qemu.on("close", () => {
          qemuError ??= new PagewireError(
            "QEMU_LOAD_FAILED",
            "the destination QEMU closed its incoming migration connection (a load error: see its log)",
          );
          signal();
        });
        log(`destination QEMU connected: ${head.machine}, ${head.pageCount} pages`);
        await write([bytes]);
      },
      onPageWritten: (p) => {
        if (isTouched && !isTouched[p]) {
          isTouched[p] = 1;
          touched!.push(p);
        }
      },
      onRound: async (round) => {
        if (!writer) return;
        log(`round ${round} in`);
        await flush(false);
        log(`round ${round} written to QEMU`);
      },
      onActivate: async () => {
        await qmp.cont();
        log("destination QEMU running");
      },
    });
    o.onDestination?.(destination);
    const result = await destination.receive({ signal: o.signal });
    return { result, head: head!, stream: { bytes: written, sections, records: writer?.records ?? 0 } };
  } catch (err) {
    (qemu as net.Socket | null)?.destroy();
    throw err;
  } finally {
    qmp.close();
    listener?.close();
  }
}
