// Stand-ins for the two QEMUs around the qemu-proxy (no QEMU needed): a source that writes a
// QEMU 7.2 migration stream into the proxy and reads its return path, a destination that
// loads the rebuilt stream as QEMU's -incoming does (and answers SHUT 0 once it has it all),
// and its QMP monitor (query-status, cont, quit).
import { createServer, connect, type Server, type Socket } from "node:net";
import { PAGE_SIZE } from "../../src/kernel/abi.js";
import { QemuStreamParser, tailComplete, type QemuStreamHead, type RamBlock } from "../../src/qemu/qemu-stream.js";
import { RamSectionWriter } from "../../src/qemu/ram-section-writer.js";
import { ReturnPathMessage, ReturnPathReader, returnPathMessage, returnPathValue } from "../../src/qemu/return-path.js";
import { rng } from "./random.js";

const enc = new TextEncoder();

/** A stream head as QEMU 7.2 writes it (return path opened, one PING), for these blocks. */
export function streamHead(
  blocks: { name: string; pages: number }[],
  sectionId = 2,
): { bytes: Uint8Array; head: QemuStreamHead } {
  const parts: number[] = [];
  const u8 = (v: number) => parts.push(v & 0xff);
  const u16 = (v: number) => (u8(v >>> 8), u8(v));
  const u32 = (v: number) => (u16(v >>> 16), u16(v));
  const u64 = (v: number) => (u32(Math.floor(v / 2 ** 32)), u32(v >>> 0));
  const str = (s: string) => (u8(s.length), [...enc.encode(s)].forEach(u8));
  u32(0x5145564d);
  u32(3);
  u8(0x07);
  u32(13);
  [...enc.encode("pc-i440fx-7.2")].forEach(u8);
  u8(0x08), u16(1), u16(0); // OPEN_RETURN_PATH
  u8(0x08), u16(2), u16(4), u32(1); // PING 1
  u8(0x01), u32(sectionId), str("ram"), u32(0), u32(4);
  const total = blocks.reduce((s, b) => s + b.pages * PAGE_SIZE, 0);
  u64(total + 0x04);
  for (const b of blocks) str(b.name), u64(b.pages * PAGE_SIZE);
  u64(0x10);
  u8(0x7e), u32(sectionId);
  let first = 0;
  const list: RamBlock[] = blocks.map((b) => {
    const r = { name: b.name, bytes: b.pages * PAGE_SIZE, firstPage: first, pages: b.pages };
    first += b.pages;
    return r;
  });
  return {
    bytes: Uint8Array.from(parts),
    head: {
      machine: "pc-i440fx-7.2",
      capabilities: [],
      blocks: list,
      pageCount: first,
      sectionId,
      footers: true,
      returnPath: true,
    },
  };
}

/** Opaque device bytes, then EOF and a VM description, as QEMU ends its stream. */
export function streamTail(deviceBytes: number, seed = 1): Uint8Array {
  const rnd = rng(seed);
  const desc = enc.encode(JSON.stringify({ page_size: PAGE_SIZE, devices: [{ name: "timer", instance_id: 0 }] }));
  const out = new Uint8Array(deviceBytes + 6 + desc.length);
  for (let i = 0; i < deviceBytes; i++) out[i] = Math.floor(rnd() * 256);
  out[deviceBytes] = 0x00;
  out[deviceBytes + 1] = 0x06;
  new DataView(out.buffer).setUint32(deviceBytes + 2, desc.length);
  out.set(desc, deviceBytes + 6);
  return out;
}

export interface FakeSourceRun {
  /** The return path's SHUT value, or null if none came before the connection closed. */
  shut: number | null;
  /** The guest's memory at the end of the stream (what a destination must end with). */
  memory: Uint8Array;
}

/**
 * A source QEMU: connects to `path`, writes a head, `rounds` PART sections (the first with
 * every page, then a few changed pages and some resent unchanged ones; `sectionDelayMs`
 * apart), an END section and the tail; then waits for its return path to answer (SHUT) or close.
 */
export async function fakeSourceQemu(
  path: string,
  o: { pages?: number; rounds?: number; seed?: number; sectionDelayMs?: number; noTail?: boolean } = {},
): Promise<FakeSourceRun> {
  const rnd = rng(o.seed ?? 7);
  const pages = o.pages ?? 96;
  const { bytes: headBytes, head } = streamHead([
    { name: "mem", pages: pages - 8 },
    { name: "pc.bios", pages: 8 },
  ]);
  const memory = new Uint8Array(head.pageCount * PAGE_SIZE);
  const writer = new RamSectionWriter(head);
  const isZero = (p: number) => memory.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE).every((b) => b === 0);
  const touch = (p: number) => {
    const page = memory.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
    if (rnd() < 0.3) page.fill(0);
    else for (let i = 0; i < PAGE_SIZE; i += 64) page[i + Math.floor(rnd() * 64)] = Math.floor(rnd() * 256);
  };
  const sock = connect(path);
  await new Promise<void>((r, j) => (sock.once("connect", r), sock.once("error", j)));
  let shut: number | null = null;
  let answered: () => void = () => {};
  const done = new Promise<void>((r) => {
    answered = r;
    sock.once("close", () => r());
  });
  sock.on("error", () => {});
  const rp = new ReturnPathReader((type, data) => {
    if (type === ReturnPathMessage.SHUT) {
      shut = returnPathValue(data);
      answered();
    }
  });
  sock.on("data", (d: Buffer) => rp.push(d));
  const write = async (b: Uint8Array) => {
    if (sock.destroyed) return;
    if (!sock.write(b)) await new Promise<void>((r) => (sock.once("drain", r), sock.once("close", r)));
  };
  await write(headBytes);
  const all = Array.from({ length: head.pageCount }, (_, p) => p);
  for (const p of all) touch(p);
  await write(writer.section(all, memory, isZero, false));
  for (let round = 1; round < (o.rounds ?? 4); round++) {
    const chosen = all.filter(() => rnd() < 0.25);
    for (const p of chosen) if (rnd() < 0.6) touch(p); // the others go again unchanged
    await write(writer.section(chosen, memory, isZero, false));
    if (o.sectionDelayMs) await new Promise((r) => setTimeout(r, o.sectionDelayMs));
  }
  const last = all.filter(() => rnd() < 0.1);
  for (const p of last) touch(p);
  await write(writer.section(last, memory, isZero, true));
  if (!o.noTail) await write(streamTail(300, o.seed)); // noTail: a stream that stalls after the stop
  // QEMU waits for its return path: SHUT, or the connection's end
  await done;
  sock.destroy();
  return { shut, memory };
}

export interface FakeDestination {
  path: string;
  qmpPath: string;
  /** "inmigrate" → "paused" (stream loaded) → "running" (cont); "quit"; "failed" (stream cut). */
  state: string;
  memory: Uint8Array | null;
  commands: string[];
  close(): Promise<void>;
}

/** A destination QEMU started with -S -incoming unix:`path`, with its QMP monitor on `qmpPath`. */
export async function fakeDestinationQemu(path: string, qmpPath: string): Promise<FakeDestination> {
  const servers: Server[] = [];
  const sockets: Socket[] = [];
  const d: FakeDestination = {
    path,
    qmpPath,
    state: "inmigrate",
    memory: null,
    commands: [],
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    },
  };
  const incoming = createServer((sock) => {
    sockets.push(sock);
    incoming.close(); // -incoming takes one connection
    const tail: Uint8Array[] = [];
    let loaded = false;
    const parser = new QemuStreamParser({
      onHead(_b, h) {
        d.memory = new Uint8Array(h.pageCount * PAGE_SIZE);
      },
      onPage(p, kind, data) {
        const page = d.memory!.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
        if (kind === "zero") page.fill(data as number);
        else if (kind === "page") page.set(data as Uint8Array);
        else throw new Error("the proxy writes no XBZRLE");
      },
      onCompletion() {},
      onSectionEnd() {},
      onTail(b) {
        tail.push(b.slice());
        const all = Buffer.concat(tail);
        if (!loaded && tailComplete(all)) {
          loaded = true;
          d.state = "paused";
          sock.write(returnPathMessage(ReturnPathMessage.SHUT, 0));
        }
      },
    });
    sock.on("data", (chunk: Buffer) => {
      try {
        parser.push(chunk);
      } catch {
        d.state = "failed";
        sock.destroy();
      }
    });
    sock.on("close", () => {
      if (!loaded && d.state === "inmigrate") d.state = "failed"; // QEMU exits: load failed
    });
    sock.on("error", () => {});
  });
  const qmp = createServer((sock) => {
    sockets.push(sock);
    sock.write(
      `${JSON.stringify({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 } }, capabilities: [] } })}\r\n`,
    );
    let buf = "";
    sock.on("data", (chunk) => {
      buf += chunk.toString();
      for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
        const msg = JSON.parse(buf.slice(0, i)) as { execute: string; id?: unknown };
        buf = buf.slice(i + 1);
        d.commands.push(msg.execute);
        let ret: unknown = {};
        if (msg.execute === "query-status") ret = { status: d.state, running: d.state === "running" };
        else if (msg.execute === "cont") {
          if (d.state !== "paused") {
            sock.write(
              `${JSON.stringify({ error: { class: "GenericError", desc: `cannot cont in ${d.state}` }, id: msg.id })}\r\n`,
            );
            continue;
          }
          d.state = "running";
        } else if (msg.execute === "quit") d.state = "quit";
        sock.write(`${JSON.stringify({ return: ret, id: msg.id })}\r\n`);
      }
    });
    sock.on("error", () => {});
  });
  servers.push(incoming, qmp);
  await new Promise<void>((r) => incoming.listen(path, r));
  await new Promise<void>((r) => qmp.listen(qmpPath, r));
  return d;
}
