// The destination side of one data channel, in its Worker: takes the connection that
// joins this session as this channel (others are closed), then applies PAGES into the
// guest's RAM in the shared memory and reports each SYNC. Every record must name a page of
// this channel's stripes (channel-stripes.ts), a dedup reference too: two channels never
// write the same page, and a reference never races another channel's write.
import { PageApplier, type AppliedPageDigest } from "../codec/page-applier.js";
import { PagewireError } from "../errors.js";
import type { Kernel } from "../kernel/kernel.js";
import { createKernel } from "../kernel/loader.js";
import { WasmGuestMemory } from "../memory/wasm-guest-memory.js";
import { listenChannel } from "../transport/channel-endpoints.js";
import { TransportError } from "../transport/transport.js";
import { FrameType, frameTypeName } from "../wire/frame.js";
import { frameKey } from "../wire/hmac.js";
import { Message, ProtocolError, sessionNonce } from "../wire/messages.js";
import { readPageRecords, RecordKind } from "../wire/page-record.js";
import { Channel } from "./channel.js";
import type { DestinationChannelInit, FromChannel, ToChannel } from "./channel-protocol.js";
import { channelOfPage } from "./channel-stripes.js";
import { sendChallenge, sessionId } from "./handshake.js";
import { isLinkFailure } from "./ownership.js";

export async function runDestinationChannel(
  init: DestinationChannelInit,
  next: () => Promise<ToChannel>,
  post: (m: FromChannel) => void,
): Promise<void> {
  const k = await createKernel({ arena: init.arena });
  const memory = new WasmGuestMemory(k, init.pageCount, { ram: init.ram });
  const applier = new PageApplier(k, memory, { digest: sharedDigest(k, init) });
  const key = init.key ? frameKey(init.key) : null;
  const t = init.timeouts;
  const acceptor = await listenChannel(init.listen);
  let closing = false;
  let ch: Channel | null = null;
  void next().then(() => {
    // the only message after init is close: stop waiting and end the connection
    closing = true;
    acceptor.close();
    ch?.transport.close();
  });
  post({ op: "listening", port: acceptor.port });
  try {
    // the first connection that joins this session as this channel is the one
    while (!ch) {
      const transport = await acceptor.accept();
      if (closing) return;
      const c = new Channel(k, transport, key, { sendTimeout: t?.frame });
      try {
        const challenge = await sendChallenge(c);
        c.setSessionNonce(sessionNonce(init.session.sourceNonce, challenge));
        const join = await c.expectMessage(Message.JOIN, "handshake", t?.handshake);
        if (join.session !== sessionId(init.session) || join.channel !== init.index)
          throw new ProtocolError("PROTOCOL_MISMATCH", `JOIN for another session or channel (${join.channel})`);
        await c.sendMessage(Message.JOINED, { channel: init.index });
        ch = c;
      } catch (err) {
        transport.close();
        c.dispose();
        if (!isLinkFailure(err) && !(err instanceof ProtocolError)) throw err;
      }
    }
    acceptor.close();
    post({ op: "joined" });
    let pages = 0;
    for (;;) {
      const f = await ch.receive();
      if (!f) {
        if (!closing)
          throw new TransportError("CONNECTION_CLOSED", `data channel ${init.index} closed before the source ended it`);
        break;
      }
      if (f.type === FrameType.PAGES) {
        checkStripes(f.payload, init);
        pages += applier.apply(f.payload);
      } else if (f.type === FrameType.SYNC) {
        const sync = Message.SYNC.decode(f.payload);
        if (sync.end) break; // the source's last word: closing our end tells it everything was read
        post({ op: "synced", round: sync.round, pages, bytes: ch.transport.bytesReceived });
      } else throw new ProtocolError("PROTOCOL_STAGE", `unexpected ${frameTypeName(f.type)} frame on a data channel`);
    }
    post({ op: "closed", stats: {}, dedup: null });
  } finally {
    acceptor.close();
    ch?.transport.close();
    ch?.dispose();
    memory.dispose();
  }
}

/** Every record of `payload` names a page of this channel, and so does every dedup reference. */
function checkStripes(payload: Uint8Array, init: DestinationChannelInit): void {
  for (const r of readPageRecords(payload, init.pageCount)) {
    let page = r.page;
    if (channelOfPage(page, init.count) === init.index && r.kind === RecordKind.DEDUP) {
      const v = new DataView(r.body.buffer, r.body.byteOffset, r.body.byteLength);
      if (v.getUint16(0, true) !== 0)
        throw new ProtocolError("PROTOCOL_STAGE", `dedup reference to another guest on data channel ${init.index}`);
      page = v.getUint32(4, true);
    }
    if (channelOfPage(page, init.count) !== init.index)
      throw new ProtocolError(
        "PROTOCOL_STAGE",
        `page ${page} belongs to channel ${channelOfPage(page, init.count)}, not ${init.index}`,
      );
  }
}

/** The main thread's digest table and bitmap, seen from this channel's kernel (only its own pages' entries are written). */
function sharedDigest(k: Kernel, init: DestinationChannelInit): AppliedPageDigest {
  const seed = BigInt("0x" + init.digest.seed);
  return {
    kernel: k,
    pageCount: init.pageCount,
    seed,
    tableAddress: init.digest.table,
    hashedAddress: init.digest.hashed,
    update() {
      // the kernel applies and hashes every record here (guest RAM in kernel memory, no other guests)
      throw new PagewireError("CHANNEL_PROTOCOL", "a data channel hashes pages only in the kernel");
    },
  };
}
