// Data-channel options, as both sides read them: how many channels, and how each one's
// connection is made (channel-endpoints.ts).
import type { ChannelDial, ChannelListen } from "../transport/channel-endpoints.js";
import { PagewireRangeError } from "../errors.js";
import type { ChannelEndpoint } from "../wire/messages.js";
import type { ChannelOptions } from "./source-options.js";

/** At most this many data channels per migration. */
export const MAX_CHANNELS = 16;

const OS_MODULE = "node:os"; // by name: bundlers for the browser leave it alone
const nodeOs =
  typeof process !== "undefined" && process.versions?.node
    ? ((await import(/* @vite-ignore */ OS_MODULE)) as typeof import("node:os"))
    : null;

/** The cores this process may use. */
export function availableCores(): number {
  const n = nodeOs ? nodeOs.availableParallelism() : (globalThis.navigator?.hardwareConcurrency ?? 1);
  return Math.max(1, n);
}

/** Channels these options ask for (0 without options or without a way to make them). */
export function wantedChannels(o: ChannelOptions | undefined): number {
  if (!o || (!o.tcp && !o.ports)) return 0;
  const n = o.count ?? o.ports?.length ?? availableCores();
  if (!Number.isInteger(n) || n < 0 || n > MAX_CHANNELS)
    throw new PagewireRangeError("CHANNEL_COUNT", `channels: count must be an integer 0..${MAX_CHANNELS}, got ${n}`);
  return Math.min(n, o.ports?.length ?? n);
}

/** How the source's channel i connects to the endpoint the destination named. */
export function channelDials(o: ChannelOptions, endpoints: ChannelEndpoint[]): ChannelDial[] {
  return endpoints.map((e, i) => {
    if (o.ports) return { kind: "port", port: o.ports[i] };
    if (e.port === undefined)
      throw new PagewireRangeError("CHANNEL_COUNT", `channel ${i}: the destination named no port`);
    return { kind: "tcp", host: o.tcp!.host, port: e.port, tls: o.tcp!.tls, maxPayload: o.tcp!.maxPayload };
  });
}

/** How the destination's `n` channels are reached. */
export function channelListens(o: ChannelOptions, n: number): ChannelListen[] {
  return Array.from({ length: n }, (_, i) =>
    o.ports
      ? { kind: "port", port: o.ports[i] }
      : { kind: "tcp", host: o.tcp!.host, tls: o.tcp!.tls, maxPayload: o.tcp!.maxPayload },
  );
}
