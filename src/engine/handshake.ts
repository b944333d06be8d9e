// The handshake, both sides (wire/messages.ts has the sequence):
//
//   destination: CHALLENGE {nonce d}          (every connection; later keyed frames bind 0¹⁶ ‖ d)
//   source:      HELLO {version, pageSize, pageCount, features offered, mode, nonce s} ──►
//   destination: checks version and page size, keeps the offered features it implements
//                ◄── WELCOME {features accepted, nonce d}
//   both:        session nonce = s ‖ d (bound into keyed frames from here on)
//
// A resumed connection (after a lost one) also opens with CHALLENGE {d'}; the source's
// RESUME and everything after it are bound to s ‖ d'.
import { PAGE_SIZE } from "../kernel/kernel.js";
import { PROTOCOL_VERSION } from "../wire/frame.js";
import {
  challengeNonce,
  checkHello,
  Message,
  ProtocolError,
  randomNonce,
  sessionNonce,
  type ChannelEndpoint,
  type Hello,
  type SourceDecision,
} from "../wire/messages.js";
import type { Channel } from "./channel.js";
import { acceptFeatures, checkAcceptedFeatures, type Feature } from "./features.js";

/** A migration session as both sides name it. */
export interface Session {
  /** The source's HELLO nonce (also the digest seed). */
  sourceNonce: string;
  /** The destination's first challenge. */
  destinationNonce: string;
}

/** The session id carried by RESUME: both nonces, 64 hex digits. */
export function sessionId(s: Session): string {
  return s.sourceNonce + s.destinationNonce;
}

/** Source side: reads the challenge, offers `features`; returns the accepted features and the session. */
export async function offerHandshake(
  ch: Channel,
  o: { pageCount: number; mode: string; features: readonly Feature[]; channels?: number; timeout?: number },
): Promise<{ features: Feature[]; session: Session; channels: ChannelEndpoint[] }> {
  const challenge = await ch.expectMessage(Message.CHALLENGE, "handshake", o.timeout).catch((err) => {
    throw withFirstFrameHint(err);
  });
  ch.setSessionNonce(challengeNonce(challenge.nonce));
  const nonce = randomNonce();
  await ch.sendMessage(Message.HELLO, {
    version: PROTOCOL_VERSION,
    pageSize: PAGE_SIZE,
    pageCount: o.pageCount,
    features: [...o.features],
    mode: o.mode,
    nonce,
    ...(o.channels ? { channels: o.channels } : {}),
  });
  const w = await ch.expectMessage(Message.WELCOME, "handshake", o.timeout).catch((err) => {
    throw withFirstFrameHint(err, "after HELLO");
  });
  if (w.nonce !== challenge.nonce)
    throw new ProtocolError("PROTOCOL_MESSAGE", "WELCOME: nonce differs from the connection's challenge");
  const features = checkAcceptedFeatures(o.features, w.features);
  const channels = checkChannelEndpoints(w.channels, o.channels ?? 0);
  ch.setSessionNonce(sessionNonce(nonce, challenge.nonce));
  return { features, session: { sourceNonce: nonce, destinationNonce: challenge.nonce }, channels };
}

/** Destination side: opens a connection with a fresh challenge; returns it. */
export async function sendChallenge(ch: Channel): Promise<string> {
  const nonce = randomNonce();
  await ch.sendMessage(Message.CHALLENGE, { nonce }); // sealed before any nonce is bound: the source cannot know it yet
  ch.setSessionNonce(challengeNonce(nonce));
  return nonce;
}

/** Destination side: the source's HELLO (bound to `challenge`), version and page size checked. */
export async function readHello(ch: Channel, timeout?: number): Promise<Hello> {
  const hello = await ch.expectMessage(Message.HELLO, "handshake", timeout);
  checkHello(hello, PAGE_SIZE);
  return hello;
}

/** Destination side: accepts the offered features found in `accept`, answers WELCOME; returns the session. */
export async function answerHello(
  ch: Channel,
  hello: Hello,
  challenge: string,
  accept: readonly Feature[],
  channels: ChannelEndpoint[] = [],
): Promise<{ features: Feature[]; session: Session }> {
  const features = acceptFeatures(hello.features, accept);
  await ch.sendMessage(Message.WELCOME, { features, nonce: challenge, ...(channels.length ? { channels } : {}) });
  ch.setSessionNonce(sessionNonce(hello.nonce, challenge));
  return { features, session: { sourceNonce: hello.nonce, destinationNonce: challenge } };
}

/** The source's check of WELCOME's data channels: at most as many as asked, each a TCP port or nothing (in process). */
function checkChannelEndpoints(endpoints: unknown, asked: number): ChannelEndpoint[] {
  if (endpoints === undefined) return [];
  if (!Array.isArray(endpoints) || endpoints.length > asked)
    throw new ProtocolError("PROTOCOL_MESSAGE", `WELCOME: channels must be a list of at most ${asked} endpoints`);
  for (const e of endpoints) {
    const port = (e as ChannelEndpoint | null)?.port;
    if (
      typeof e !== "object" ||
      e === null ||
      (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536))
    )
      throw new ProtocolError("PROTOCOL_MESSAGE", "WELCOME: a channel endpoint is not {port?: 1..65535}");
  }
  return endpoints as ChannelEndpoint[];
}

/** Source side of a resumed connection: reads the new challenge and sends RESUME {session, decision}. */
export async function sendResume(
  ch: Channel,
  session: Session,
  decision: SourceDecision,
  timeout?: number,
): Promise<void> {
  const challenge = await ch.expectMessage(Message.CHALLENGE, "resume", timeout);
  ch.setSessionNonce(sessionNonce(session.sourceNonce, challenge.nonce));
  await ch.sendMessage(Message.RESUME, { session: sessionId(session), decision });
}

/** Destination side of a resumed connection: challenge, then the source's RESUME for `session`; returns its decision. */
export async function readResume(ch: Channel, session: Session, timeout?: number): Promise<SourceDecision> {
  const challenge = await sendChallenge(ch);
  ch.setSessionNonce(sessionNonce(session.sourceNonce, challenge));
  const r = await ch.expectMessage(Message.RESUME, "resume", timeout);
  if (r.session !== sessionId(session))
    throw new ProtocolError("PROTOCOL_MISMATCH", `RESUME for another session (${r.session.slice(0, 16)}…)`);
  if (r.decision !== "abort" && r.decision !== "commit" && r.decision !== "postcopy")
    throw new ProtocolError("PROTOCOL_MESSAGE", `RESUME: unknown decision '${String(r.decision).slice(0, 20)}'`);
  return r.decision;
}

/**
 * A connection that closes or stays silent before the destination's first word is most
 * often the wrong kind of connection (plain TCP to a TLS receiver: each side waits for the
 * other) or a refusal the receiver logs: the error says so (same error, longer message).
 */
function withFirstFrameHint(err: unknown, when = "before its first message"): unknown {
  const code = (err as { code?: string })?.code;
  if (code !== "CONNECTION_CLOSED" && code !== "TIMEOUT_HANDSHAKE") return err;
  const what = code === "CONNECTION_CLOSED" ? "closed the connection" : "said nothing";
  (err as Error).message +=
    `: the destination ${what} ${when} — if it serves TLS, connect with TLS (send --tls-ca FILE); otherwise its log says why it refused this sender (key, size, another session)`;
  return err;
}
