// The source side of one data channel, in its Worker: joins the session on its own
// connection, then for each round encodes its stripe of the round's pages (read straight
// from the guest's RAM in the shared memory) into PAGES frames and ends the round with SYNC.
import { emptyCounts } from "../codec/codecs.js";
import { EncodePipeline } from "../codec/encode-pipeline.js";
import { createKernel } from "../kernel/loader.js";
import { WasmGuestMemory } from "../memory/wasm-guest-memory.js";
import { dialChannel } from "../transport/channel-endpoints.js";
import { TokenBucket } from "../transport/rate-limit.js";
import { realClock } from "../util/clock.js";
import { frameKey } from "../wire/hmac.js";
import { Message, ProtocolError, sessionNonce } from "../wire/messages.js";
import { Channel } from "./channel.js";
import type { FromChannel, SourceChannelInit, ToChannel } from "./channel-protocol.js";
import { sessionId } from "./handshake.js";
import { PageSender } from "./page-sender.js";
import { MigrationReport } from "./report.js";

export async function runSourceChannel(
  init: SourceChannelInit,
  next: () => Promise<ToChannel>,
  post: (m: FromChannel) => void,
): Promise<void> {
  const k = await createKernel({ arena: init.arena });
  const memory = new WasmGuestMemory(k, init.pageCount, { ram: init.ram });
  const pipeline = new EncodePipeline(
    k,
    init.pageCount,
    { ...init.codecs, hashSeed: BigInt("0x" + init.hashSeed) },
    init.batchPages,
  );
  const limiter = new TokenBucket(init.rate);
  const t = init.timeouts;
  const ch = new Channel(k, await dialChannel(init.dial), init.key ? frameKey(init.key) : null, {
    limiter,
    sendTimeout: t?.frame,
  });
  const report = new MigrationReport(); // per-batch counters only: the main thread keeps the real one
  const sender = new PageSender({
    kernel: k,
    memory,
    channel: () => ch,
    pipeline,
    report,
    clock: realClock,
    frameBytes: init.frameBytes,
    checkRemote: () => {},
    onPages: (n) => {
      // the main thread's progress: a report at most every 100 ms
      roundPages += n;
      const now = performance.now();
      if (now - lastReport < 100) return;
      lastReport = now;
      post({ op: "progress", round: currentRound, pages: roundPages, bytes: ch.bytesSent - roundBytes });
    },
  });
  let currentRound = 0;
  let roundPages = 0;
  let roundBytes = 0;
  let lastReport = 0;
  try {
    // join: the connection proves it belongs to the session (bound to source nonce ‖ its challenge)
    const challenge = await ch.expectMessage(Message.CHALLENGE, "handshake", t?.handshake);
    ch.setSessionNonce(sessionNonce(init.session.sourceNonce, challenge.nonce));
    await ch.sendMessage(Message.JOIN, { session: sessionId(init.session), channel: init.index });
    const joined = await ch.expectMessage(Message.JOINED, "handshake", t?.handshake);
    if (joined.channel !== init.index)
      throw new ProtocolError("PROTOCOL_MESSAGE", `JOINED channel ${joined.channel}, want ${init.index}`);
    post({ op: "ready" });
    let round = 0;
    for (;;) {
      const m = await next();
      if (m.op === "close") {
        // the destination closes its end once it has read everything: only then may this worker stop
        await ch.sendMessage(Message.SYNC, { round, end: true });
        const f = await ch.receive(t ? { seconds: t.frame, stage: "receiving" } : undefined);
        if (f) throw new ProtocolError("PROTOCOL_STAGE", `frame type ${f.type} from the destination on a data channel`);
        break;
      }
      if (m.op === "rate") {
        limiter.setRate(m.rate);
        continue;
      }
      if (m.op !== "round") continue;
      round = currentRound = m.round;
      const before = (roundBytes = ch.bytesSent);
      roundPages = 0;
      const counts = emptyCounts();
      sender.begin(m.round, m.lastStage, m.sendAll);
      await sender.sendBatch(m.pages, counts);
      await sender.flush();
      await ch.sendMessage(Message.SYNC, { round: m.round });
      post({ op: "done", round: m.round, counts, bytes: ch.bytesSent - before });
    }
    pipeline.finish();
    post({ op: "closed", stats: pipeline.stats(), dedup: pipeline.dedupStats() });
  } finally {
    ch.transport.close();
    sender.dispose();
    pipeline.dispose();
    memory.dispose();
    ch.dispose();
  }
}
