// The qemu-proxy's source half: QEMU's own migration stream in, pagewire's protocol out.
//
//   source QEMU ── migrate tcp:/unix: ──▶ proxy-source ══ pagewire (keys, TLS, channels) ══▶ proxy-destination ──▶ destination QEMU -incoming
//               ◀── return path: SHUT ───┘ (only at pagewire's commit decision)
//
// QEMU keeps its dirty tracking, convergence rule and downtime: each RAM record lands in a
// shadow of the guest's RAM (qemu-stream-log.ts) and pagewire's rounds carry what changed,
// through its pipeline (zero, unchanged, dedup, XBZRLE, RLE). The stream's head goes ahead
// as the PREAMBLE; once QEMU enters completion (its guest stopped) the rate limit is lifted,
// as QEMU lifts max-bandwidth; the opaque tail (device state, EOF, VM description) is the
// device state of pagewire's commit.
//
// Ownership: QEMU with the return-path capability counts its migration done only on the
// destination's SHUT 0, and resumes its guest on anything else. The proxy sends SHUT 0 at
// pagewire's decision (COMMIT) and closes the connection on any failure before it, so the
// source QEMU runs again; after the decision a lost link is pagewire's to repair (RESUME).
import type net from "node:net";
import { PagewireError } from "../errors.js";
import type { CodecOptions } from "../codec/encode-pipeline.js";
import type { MigrationReport } from "../engine/report.js";
import { MigrationSource } from "../engine/source.js";
import type { ChannelOptions } from "../engine/source-options.js";
import type { MigrationTimeouts } from "../engine/ownership.js";
import { createKernel } from "../kernel/loader.js";
import { WasmGuestMemory } from "../memory/wasm-guest-memory.js";
import type { TerminationPolicy } from "../policy/types.js";
import { connectTcp, type TcpOptions } from "../transport/tcp.js";
import type { FrameKey } from "../wire/frame.js";
import { QemuStreamLog, type QemuStreamCounts } from "./qemu-stream-log.js";
import { concat, QemuStreamError, QemuStreamParser, tailComplete, type QemuStreamHead } from "./qemu-stream.js";
import { ReturnPathMessage, returnPathMessage } from "./return-path.js";
import { type QemuEndpoint, listenEndpoint, endpointUri } from "./endpoint.js";
import { DowntimeLimitTuner } from "./downtime-limit-tuner.js";
import { QmpClient } from "./qmp.js";

export interface QemuProxySourceOptions {
  /** Where the source QEMU's `migrate` connects (give QEMU `endpointUri(listen)`). */
  listen: QemuEndpoint;
  /** The destination proxy. */
  to: { host: string; port: number; tls?: TcpOptions["tls"] };
  key?: FrameKey;
  /** Bytes per second on the link (default unlimited); lifted once QEMU stops its guest, as QEMU does. */
  maxBandwidth?: number;
  /** Keep maxBandwidth after QEMU stopped its guest too (default false). */
  limitFinalRound?: boolean;
  codecs?: CodecOptions;
  channels?: ChannelOptions;
  timeouts?: Partial<MigrationTimeouts>;
  /** RAM pages that may wait in the proxy before QEMU's socket is paused (default 96). */
  highWaterPages?: number;
  /** How long QEMU's stream may stall once QEMU stopped its guest, ms (default 30 000). */
  tailTimeoutMs?: number;
  /** Called once listening, with QEMU's migrate URI ("tcp:HOST:PORT" or "unix:PATH"). */
  onListening?: (uri: string) => void;
  log?: (line: string) => void;
  /** After a lost link past the decision, a new connection to the destination (default: connect again). */
  reconnect?: boolean;
  /** Cancels before the decision (CANCELLED; the source QEMU runs its guest on). */
  signal?: AbortSignal;
  /** Called with pagewire's MigrationSource once made (its events: progress, rounds …). */
  onSource?: (source: MigrationSource) => void;
  /**
   * The source QEMU's QMP socket (one no other client holds): while QEMU iterates, its
   * downtime-limit is scaled to the link (downtime-limit-tuner.ts) and restored at the end.
   * Without it QEMU's parameters are left alone.
   */
  qmp?: string;
}

export interface QemuProxySourceResult {
  /** pagewire's report (its rounds are the proxy's batches; its downtime runs from QEMU's completion record). */
  report: MigrationReport;
  head: QemuStreamHead;
  /** QEMU's stream: bytes read, RAM records by kind, unchanged records dropped, tail bytes. */
  stream: QemuStreamCounts & { bytes: number; tailBytes: number };
  /** pagewire's bytes on the network. */
  bytesSent: number;
  /** With `qmp`: the user's downtime-limit and the last one set while QEMU iterated, ms. */
  downtimeLimit?: { base: number; final: number; updates: number };
}

/** The source QEMU's migration, through pagewire to the destination proxy; see the file header. */
export async function proxyQemuSource(o: QemuProxySourceOptions): Promise<QemuProxySourceResult> {
  const log = o.log ?? (() => {});
  const k = await createKernel();
  // the QMP socket first: a wrong one fails before QEMU is told where to migrate
  const qmp = o.qmp
    ? await QmpClient.connect(o.qmp).catch((err: PagewireError) => {
        throw err.code === "QMP_TIMEOUT"
          ? new PagewireError(
              err.code,
              `${err.message}: another client may hold it (QEMU serves one client per -qmp socket; give the proxy its own, e.g. a second -qmp unix:PATH,server=on,wait=off)`,
              { cause: err },
            )
          : err;
      })
    : null;
  let tuner = null as DowntimeLimitTuner | null;
  let tunerStarting: Promise<unknown> = Promise.resolve();
  let server: net.Server;
  try {
    if (qmp) {
      await qmp.execute("query-migrate-parameters"); // a QEMU that has them (its own errors say why not)
      // QEMU's STOP comes before its completion record, which may wait behind QEMU's paused
      // socket for as long as pagewire's round takes: QEMU is released at once (its guest
      // stopped, nothing is gained by holding it back); the rate limit is lifted once QEMU's
      // status says it completes (a guest stopped by its user leaves the limit in place)
      qmp.onEvent((e) => {
        if (e.event === "RESUME") streamLog?.holdAgain(); // its user had paused it
        if (e.event !== "STOP" || !streamLog || streamLog.completing) return;
        log(`QEMU stopped its guest (QMP STOP); ${streamLog.pending} pages wait in the proxy`);
        streamLog.release();
        qmp
          .queryStatus()
          .then((st) => {
            if (st.status !== "finish-migrate" || streamLog?.completing) return;
            tuner?.freeze();
            log("QEMU completes its migration (QMP status finish-migrate)");
            if (!o.limitFinalRound) source?.setMaxBandwidth(Infinity);
          })
          .catch(() => {}); // the completion record does the same
      });
    }
    server = await listenEndpoint(o.listen);
  } catch (err) {
    qmp?.close();
    throw err;
  }
  o.onListening?.(endpointUri(o.listen, server));
  let qemu: net.Socket | null = null;
  let streamLog = null as QemuStreamLog | null;
  let source: MigrationSource | null = null;
  try {
    qemu = await new Promise<net.Socket>((resolve) => server.once("connection", resolve));
    server.close();
    const sock = qemu;
    sock.setNoDelay(true);
    log(`QEMU connected`);
    let head = null as QemuStreamHead | null;
    let headBytes = null as Uint8Array | null;
    const tail: Uint8Array[] = [];
    let tailBytes = 0;
    let failure: unknown = null;
    let notify: (() => void) | null = null;
    const wake = () => {
      const n = notify;
      notify = null;
      n?.();
    };
    const fail = (err: unknown) => {
      failure ??= err;
      streamLog?.fail(failure);
      wake();
    };
    let tailDone = false;
    let recordsAtCompletion = 0;
    const parser = new QemuStreamParser({
      onHead(bytes, h) {
        head = h;
        headBytes = bytes.slice();
        if (!h.returnPath)
          throw new QemuStreamError(
            "QEMU_RETURN_PATH",
            "the source QEMU migrates without its return path: it would count the migration done before the destination has the guest. Run `migrate-set-capabilities capabilities=[{capability: return-path, state: true}]` on the source first",
          );
        if (qmp)
          tunerStarting = DowntimeLimitTuner.start(qmp, {
            sample: () => {
              const p = source?.progress;
              return p ? { qemuBytes: parser.bytes, linkBytes: p.transferred } : null;
            },
            log,
          }).then(
            (t) => {
              tuner = t;
              if (streamLog?.completing) t.freeze();
            },
            (err: Error) => log(`cannot read QEMU's downtime-limit (${err.message}); left as it is`),
          );
        const memory = new WasmGuestMemory(k, h.pageCount);
        streamLog = new QemuStreamLog(k, memory, {
          highWaterPages: o.highWaterPages,
          pause: () => sock.pause(),
          resume: () => sock.resume(),
        });
        wake();
      },
      onPing(v) {
        sock.write(returnPathMessage(ReturnPathMessage.PONG, v));
      },
      onPage(page, kind, data) {
        streamLog!.record(page, kind, data);
      },
      onCompletion() {
        recordsAtCompletion = parser.records;
        tuner?.freeze();
        log(
          `QEMU stopped its guest (completion)${tuner ? ` at downtime-limit ${tuner.current} ms` : ""}; ${streamLog!.pending} pages wait in the proxy`,
        );
        // a stream that stalls now (QEMU hung, or no VM description to end it) fails the
        // migration before the decision: QEMU's return path closes and its guest runs again
        const ms = o.tailTimeoutMs ?? 30_000;
        setTimeout(() => {
          if (!tailDone)
            fail(
              new QemuStreamError(
                "QEMU_STREAM_END",
                `QEMU's stream did not end within ${ms} ms after QEMU stopped its guest (a machine with suppress-vmdesc=on ends without the VM description the proxy recognises the end by)`,
              ),
            );
        }, ms).unref();
        if (!o.limitFinalRound) source?.setMaxBandwidth(Infinity);
        streamLog!.completion();
      },
      onSectionEnd() {},
      onTail(bytes) {
        tail.push(bytes.slice());
        tailBytes += bytes.length;
        if (tailDone) fail(new QemuStreamError("QEMU_STREAM_MALFORMED", "QEMU stream: bytes after its VM description"));
        else if (bytes[bytes.length - 1] === 0x7d && tailComplete(joined(tail, tailBytes))) {
          tailDone = true;
          log(
            `QEMU's stream ended: ${parser.records - recordsAtCompletion} RAM records after its guest stopped, ${tailBytes} bytes of device state and description`,
          );
          streamLog!.end();
          wake();
        }
      },
    });
    sock.on("data", (chunk: Buffer) => {
      if (failure) return;
      try {
        parser.push(chunk);
      } catch (err) {
        fail(err);
      }
    });
    sock.on("close", () =>
      fail(
        new QemuStreamError(
          "QEMU_STREAM_END",
          tailDone
            ? "the source QEMU closed its migration connection before the decision"
            : "the source QEMU closed its migration stream before its end (migrate_cancel, or QEMU exited)",
        ),
      ),
    );
    sock.on("error", () => {}); // 'close' follows
    const until = async (done: () => boolean, ms: number, what: string) => {
      const deadline = performance.now() + ms;
      while (!done()) {
        if (failure) throw failure;
        const left = deadline - performance.now();
        if (left <= 0) throw new QemuStreamError("QEMU_STREAM_END", `QEMU's stream stalled for ${ms} ms ${what}`);
        await new Promise<void>((r) => {
          notify = r;
          setTimeout(r, Math.min(left, 1000));
        });
      }
      if (failure) throw failure;
    };
    await until(() => head !== null, o.tailTimeoutMs ?? 30_000, "before the RAM section began");
    const h = head!;
    log(`QEMU stream: ${h.machine}, ${h.blocks.length} RAM blocks, ${h.pageCount} pages`);
    const transport = await connectTcp(o.to.host, o.to.port, { tls: o.to.tls });
    const termination: TerminationPolicy = {
      kind: "termination",
      name: "qemu",
      decide: () =>
        streamLog!.ended
          ? { action: "stop", converged: true, reason: "QEMU stopped its guest and its stream ended" }
          : { action: "continue", converged: false, reason: "QEMU is iterating" },
      reset() {},
    };
    let committed = false;
    source = new MigrationSource({
      memory: streamLog!.memory,
      kernel: k,
      dirtyLog: streamLog!,
      dirtyOnly: true,
      transport,
      mode: "precopy",
      maxBandwidth: o.maxBandwidth,
      maxRounds: Number.MAX_SAFE_INTEGER,
      codecs: o.codecs,
      channels: o.channels,
      key: o.key,
      timeouts: o.timeouts,
      policy: { termination },
      preamble: headBytes!,
      reconnect: o.reconnect === false ? undefined : () => connectTcp(o.to.host, o.to.port, { tls: o.to.tls }),
      onPause: async () => {
        // QEMU stopped its guest before; its stream has ended (the termination rule waits for it)
        await until(
          () => tailDone,
          o.tailTimeoutMs ?? 30_000,
          "after QEMU stopped its guest (a machine with suppress-vmdesc=on ends without the VM description the proxy recognises the end by)",
        );
      },
      deviceState: () => joined(tail, tailBytes),
      onCommit: () => {
        // QEMU gone or its stream broken (migrate_cancel resumes its guest): no commit
        if (failure) throw failure;
        committed = true;
        log("decision: commit; SHUT 0 to the source QEMU");
        sock.write(returnPathMessage(ReturnPathMessage.SHUT, 0));
      },
      onResume: () => {
        sock.destroy(); // QEMU's return path fails: QEMU fails its migration and runs its guest again
      },
    });
    if (streamLog!.completing && !o.limitFinalRound) source.setMaxBandwidth(Infinity);
    o.onSource?.(source);
    const report = await source.migrate({ signal: o.signal });
    log(`pagewire committed; QEMU completes`);
    void committed;
    return {
      report,
      head: h,
      stream: { ...streamLog!.counts, bytes: parser.bytes, tailBytes },
      bytesSent: report.ram.transferred,
      ...(tuner ? { downtimeLimit: { base: tuner.base, final: tuner.current, updates: tuner.history.length } } : {}),
    };
  } catch (err) {
    qemu?.destroy(); // before the decision: QEMU's migration fails, its guest runs on
    throw err instanceof PagewireError ? err : new PagewireError("ERROR", String(err), { cause: err });
  } finally {
    server.close();
    streamLog?.dispose();
    await tunerStarting;
    await tuner?.stop(); // the user's downtime-limit again
    qmp?.close();
  }
}

/** The tail so far as one buffer, kept as the only part (the next check joins only what came since). */
function joined(parts: Uint8Array[], total: number): Uint8Array {
  const out = concat(parts, total);
  parts.length = 0;
  parts.push(out);
  return out;
}
