// The entry of a data channel's Worker (channel-protocol.ts): one side of one channel,
// with its own kernel instance on its own arena of the main thread's shared memory.
import { PagewireError } from "../errors.js";
import { parentPort } from "../util/worker.js";
import type { FromChannel, ToChannel } from "./channel-protocol.js";
import { runDestinationChannel } from "./destination-channel.js";
import { isLinkFailure } from "./ownership.js";
import { runSourceChannel } from "./source-channel.js";

const parent = await parentPort();
const post = (m: FromChannel) => parent.post(m);
const inbox: ToChannel[] = [];
let wake: (() => void) | null = null;
parent.onMessage((m) => {
  inbox.push(m as ToChannel);
  wake?.();
});

/** The next message from the main thread. */
async function next(): Promise<ToChannel> {
  while (!inbox.length) await new Promise<void>((r) => (wake = r));
  wake = null;
  return inbox.shift()!;
}

try {
  const init = await next();
  if (init.op !== "init") throw new PagewireError("CHANNEL_PROTOCOL", `channel worker: first message is ${init.op}`);
  if (init.role === "source") await runSourceChannel(init, next, post);
  else await runDestinationChannel(init, next, post);
} catch (err) {
  const e = err as { code?: string; message?: string };
  post({ op: "error", code: e?.code ?? "ERROR", message: e?.message ?? String(err), link: isLinkFailure(err) });
}
