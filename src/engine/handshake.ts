// The handshake, both sides (wire/messages.ts has the sequence):
//
//   source: HELLO {version, pageSize, pageCount, features offered, mode, nonce} ──►
//   destination: checks version and page size, keeps the offered features it implements
//                ◄── WELCOME {features accepted, nonce}
//   both: session nonce = source nonce ‖ destination nonce (bound into keyed frames)
import { PAGE_SIZE } from "../kernel/kernel.js";
import { PROTOCOL_VERSION } from "../wire/frame.js";
import { checkHello, Message, ProtocolError, randomNonce, sessionNonce, type Feature, type Hello } from "../wire/messages.js";
import type { Channel } from "./channel.js";

/** Every feature this implementation knows, in handshake order. */
export const ALL_FEATURES: readonly Feature[] = ["zero", "xbzrle", "rle", "dedup", "postcopy", "device-state"];

/** Source side: offers `features`, returns those the destination accepted and the source nonce. */
export async function offerHandshake(ch: Channel, o: { pageCount: number; mode: string; features: readonly Feature[] }): Promise<{ features: Feature[]; nonce: string }> {
  const nonce = randomNonce();
  await ch.sendMessage(Message.HELLO, { version: PROTOCOL_VERSION, pageSize: PAGE_SIZE, pageCount: o.pageCount, features: [...o.features], mode: o.mode, nonce });
  const w = await ch.expectMessage(Message.WELCOME, "handshake");
  const unknown = w.features.filter((x) => !o.features.includes(x));
  if (unknown.length) throw new ProtocolError("PROTOCOL_MISMATCH", `destination accepted features that were not offered: ${unknown.join(", ")}`);
  ch.setSessionNonce(sessionNonce(nonce, w.nonce));
  return { features: w.features, nonce };
}

/** Destination side, first half: the source's HELLO, version and page size checked. */
export async function readHello(ch: Channel): Promise<Hello> {
  const hello = await ch.expectMessage(Message.HELLO, "handshake");
  checkHello(hello, PAGE_SIZE);
  return hello;
}

/** Destination side, second half: accepts the offered features found in `accept`, answers WELCOME. */
export async function answerHello(ch: Channel, hello: Hello, accept: readonly Feature[]): Promise<Feature[]> {
  const features = hello.features.filter((f) => accept.includes(f) && ALL_FEATURES.includes(f));
  const nonce = randomNonce();
  await ch.sendMessage(Message.WELCOME, { features, nonce });
  ch.setSessionNonce(sessionNonce(hello.nonce, nonce));
  return features;
}
