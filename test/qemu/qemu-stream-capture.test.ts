// The stream parser and RAM section writer against QEMU itself: a real guest (TCG, 128 MiB)
// migrated by QEMU to a file ("exec:cat > FILE") and, with the return-path capability, to a
// unix socket that answers nothing. Both captures must parse in random chunks (head, records
// and QEMU's own counters agree; tail complete); a stream rebuilt from the parsed pages with
// RamSectionWriter must load in fresh destination QEMUs (-S), and the guest must go on
// beating there with its pattern intact. (test/qemu/fixtures/qemu-7.2-stream-prefix.bin.br
// is the head and first 40 records of a capture like the first one.)
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeXbzrle } from "../../src/codec/xbzrle.js";
import { PAGE_SIZE } from "../../src/kernel/abi.js";
import type { Kernel } from "../../src/kernel/kernel.js";
import { loadKernel } from "../../src/kernel/loader.js";
import { QemuStreamParser, tailComplete, type QemuStreamHead, type RamRecordKind } from "../../src/qemu/qemu-stream.js";
import { QmpClient, type QmpMigrationInfo } from "../../src/qemu/qmp.js";
import { RamSectionWriter } from "../../src/qemu/ram-section-writer.js";
import { ReturnPathMessage, ReturnPathReader, returnPathValue } from "../../src/qemu/return-path.js";
import {
  buildInitramfs,
  guestArgs,
  kernelPath,
  qemuTestMissing,
  readSerial,
  startQemu,
  waitFor,
} from "../support/qemu-guest.js";
import { randInt, rng } from "../support/random.js";

const missing = qemuTestMissing("the QEMU stream capture test");

let k: Kernel;
beforeAll(async () => {
  k = await loadKernel();
});

interface Parsed {
  head: QemuStreamHead;
  headBytes: Uint8Array;
  /** The pages of each PART/END section, in stream order; the last is the END's. */
  sections: number[][];
  counts: Record<RamRecordKind, number>;
  /** PING commands' values, in order. */
  pings: number[];
  /** Every page's content after the whole stream. */
  memory: Uint8Array;
  tail: Uint8Array;
}

/** Parses a captured stream in random chunks, checking what the format requires on the way. */
function parseCapture(bytes: Uint8Array, seed: number): Parsed {
  const r = rng(seed);
  let got: Omit<Parsed, "tail"> | null = null;
  let current: number[] = [];
  let completion = false;
  let ended = false;
  const tails: Buffer[] = [];
  const parser = new QemuStreamParser({
    onHead(b, head) {
      got = {
        head,
        headBytes: b.slice(),
        sections: [],
        counts: { zero: 0, page: 0, xbzrle: 0 },
        pings: [],
        memory: new Uint8Array(head.pageCount * PAGE_SIZE),
      };
    },
    onPing(value) {
      got!.pings.push(value);
    },
    onPage(page, kind, data) {
      const g = got!;
      if (!(Number.isInteger(page) && page >= 0 && page < g.head.pageCount))
        throw new Error(`record for page ${page} of ${g.head.pageCount}`);
      const at = g.memory.subarray(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
      if (kind === "zero") at.fill(data as number);
      else if (kind === "page") at.set(data as Uint8Array);
      else decodeXbzrle(k, data as Uint8Array, at);
      g.counts[kind]++;
      current.push(page);
    },
    onCompletion() {
      if (completion) throw new Error("a second completion");
      completion = true;
    },
    onSectionEnd(c) {
      if (c !== completion || ended) throw new Error(`section end (completion ${c}) out of order`);
      ended = c;
      got!.sections.push(current);
      current = [];
    },
    onTail(b) {
      if (!ended) throw new Error("tail before the END section ended");
      tails.push(Buffer.from(b));
    },
  });
  for (let o = 0; o < bytes.length; ) {
    const n = 1 + randInt(r, r() < 0.1 ? 100 : 200_000);
    parser.push(bytes.subarray(o, o + n));
    o += n;
  }
  parser.end();
  expect(completion).toBe(true);
  return { ...got!, tail: new Uint8Array(Buffer.concat(tails)) };
}

/** Checks a parsed capture against the format and QEMU's own account of the migration. */
function checkCapture(p: Parsed, info: QmpMigrationInfo, machine: string): void {
  const h = p.head;
  expect(h.machine).toBe(machine);
  expect(h.blocks.reduce((s, b) => s + b.bytes, 0)).toBe(h.pageCount * PAGE_SIZE);
  expect(h.pageCount * PAGE_SIZE).toBe(info.ram!.total);
  // QEMU counts what it sent the way the parser reads it: "normal" pages and zero pages
  expect(p.counts.page).toBe(info.ram!.normal);
  expect(p.counts.zero).toBe(info.ram!.duplicate);
  expect(p.counts.xbzrle).toBe(0);
  expect(p.sections.length).toBeGreaterThanOrEqual(2);
  expect(tailComplete(p.tail)).toBe(true);
  expect(tailComplete(p.tail.subarray(0, -1))).toBe(false);
}

/** The stream again, from the parsed pages: the head, one section per original section with the final contents, the tail. */
function rebuild(p: Parsed): Buffer {
  const zero = Buffer.alloc(PAGE_SIZE);
  const isZero = (page: number) =>
    Buffer.from(p.memory.buffer, p.memory.byteOffset + page * PAGE_SIZE, PAGE_SIZE).equals(zero);
  const writer = new RamSectionWriter(p.head);
  const parts = p.sections.map((pages, i) =>
    writer.section(
      [...new Set(pages)].sort((a, b) => a - b),
      p.memory,
      isZero,
      i === p.sections.length - 1,
    ),
  );
  return Buffer.concat([p.headBytes, ...parts, p.tail]);
}

describe.skipIf(!!missing)("QEMU's own migration stream (real QEMU guest)", () => {
  const dir = mkdtempSync(join(tmpdir(), "pw-qstream-"));
  const shm = `/dev/shm/pw-qstream-${process.pid}`;
  const procs: ChildProcess[] = [];
  const sockets: Socket[] = [];
  const servers: Server[] = [];
  afterAll(() => {
    for (const s of sockets) s.destroy();
    for (const s of servers) s.close();
    for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    for (const x of ["a", "b", "c"]) rmSync(`${shm}-${x}`, { force: true });
  });

  it("parses QEMU's streams (file and return path) and a stream rebuilt from them loads and runs", async () => {
    const files = { kernel: kernelPath()!, initrd: buildInitramfs(dir) };
    const a = { ram: `${shm}-a`, qmp: join(dir, "a.qmp"), serial: join(dir, "a.log") };
    const source = startQemu(guestArgs(files, a));
    procs.push(source);
    await waitFor("the source guest's 3rd heartbeat", () => readSerial(a.serial).beats.length >= 3, 90_000, source);
    const pattern = readSerial(a.serial).pattern;
    expect(pattern).toMatch(/^[0-9a-f]{32}$/);
    const qa = await QmpClient.connect(a.qmp);
    try {
      // the machine `-machine pc` resolves to, as this QEMU names it
      const machines = await qa.execute<{ name: string; alias?: string }[]>("query-machines");
      const machine = machines.find((m) => m.alias === "pc")!.name;

      // 1. to a file: QEMU writes it through `cat`, which may still be flushing when QEMU reports completion
      const file = join(dir, "stream.bin");
      await qa.migrate(`exec:cat > ${file}`);
      const info1 = await qa.waitForMigration({ timeoutMs: 60_000, pollMs: 50 });
      let captured = new Uint8Array(0);
      await waitFor(
        "the whole stream in the file",
        () => existsSync(file) && streamEnded((captured = readFileSync(file))),
        10_000,
      );
      const p1 = parseCapture(captured, 1);
      checkCapture(p1, info1, machine);
      expect(p1.head.returnPath).toBe(false);

      // 2. the guest runs on; then to a unix socket with the return path on, answering nothing
      await qa.cont();
      const beats = readSerial(a.serial).beats.length;
      await waitFor("2 more heartbeats", () => readSerial(a.serial).beats.length >= beats + 2, 30_000, source);
      const path = join(dir, "capture.sock");
      const chunks: Buffer[] = [];
      let size = 0;
      const done = new Promise<void>((resolve) => {
        const server = createServer((s) => {
          sockets.push(s);
          s.on("data", (d: Buffer) => {
            chunks.push(d);
            size += d.length;
            // QEMU's stream ends with its VM description ('}'); it then waits for SHUT
            if (d[d.length - 1] === 0x7d && streamEnded(Buffer.concat(chunks))) resolve();
          });
        });
        server.listen(path);
        servers.push(server);
      });
      await qa.setMigrationCapabilities({ "return-path": true });
      await qa.migrate(`unix:${path}`);
      await Promise.race([
        done,
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error("no whole stream on the socket in 60 s")), 60_000),
        ),
      ]);
      // without SHUT from the destination, QEMU does not count the migration done: what the proxy relies on
      await new Promise((r) => setTimeout(r, 500));
      const info2 = await qa.queryMigrate();
      expect(info2.status).not.toBe("completed");
      const p2 = parseCapture(new Uint8Array(Buffer.concat(chunks)), 2);
      checkCapture(p2, info2, machine);
      expect(p2.head.returnPath).toBe(true);
      console.log(`return-path capture: PINGs ${JSON.stringify(p2.pings)}`);
      expect(p2.head.blocks).toEqual(p1.head.blocks);
      expect(info2.ram!.total).toBe(info1.ram!.total);
      const lastOnSource = readSerial(a.serial).beats.at(-1)![0];

      // 3. the first capture rebuilt, into a destination reading a file (-incoming exec:cat)
      const rebuilt1 = join(dir, "rebuilt.bin");
      writeFileSync(rebuilt1, rebuild(p1));
      const c = { ram: `${shm}-c`, qmp: join(dir, "c.qmp"), serial: join(dir, "c.log") };
      const destC = startQemu(["-S", ...guestArgs(files, { ...c, incoming: `exec:cat ${rebuilt1}` })]);
      procs.push(destC);
      await waitFor("the file destination's QMP socket", () => existsSync(c.qmp), 10_000, destC);
      const qc = await QmpClient.connect(c.qmp);
      try {
        const loaded = await qc.waitForMigration({ timeoutMs: 30_000, pollMs: 50 });
        expect(loaded.status).toBe("completed");
        expect((await qc.queryStatus()).status).toBe("paused");
        await qc.quit();
      } finally {
        qc.close();
      }

      // 4. the return-path capture rebuilt, into a destination on a unix socket: SHUT 0, paused, then it runs on
      source.kill("SIGKILL");
      const b = { ram: `${shm}-b`, qmp: join(dir, "b.qmp"), serial: join(dir, "b.log") };
      const incoming = join(dir, "incoming.sock");
      const dest = startQemu(["-S", ...guestArgs(files, { ...b, incoming: `unix:${incoming}` })]);
      procs.push(dest);
      await waitFor("the destination's incoming socket", () => existsSync(incoming), 10_000, dest);
      const s = connect(incoming);
      sockets.push(s);
      const pongs: number[] = [];
      const shut = new Promise<number>((resolve, reject) => {
        const rp = new ReturnPathReader((type, data) => {
          if (type === ReturnPathMessage.SHUT) resolve(returnPathValue(data));
          else if (type === ReturnPathMessage.PONG) pongs.push(returnPathValue(data));
          else reject(new Error(`return-path message ${type} from the destination`));
        });
        s.on("data", (d: Buffer) => rp.push(d));
        s.on("error", reject);
        s.on("close", () => reject(new Error(`the destination closed its socket: ${stderrOf(dest)}`)));
      });
      s.write(rebuild(p2));
      expect(await Promise.race([shut, timeout(30_000, "SHUT from the destination")])).toBe(0);
      // the destination answers each PING the rebuilt stream carries (the head's, verbatim from QEMU)
      expect(pongs).toEqual(p2.pings);
      const qb = await QmpClient.connect(b.qmp);
      try {
        expect((await qb.waitForMigration({ timeoutMs: 10_000, pollMs: 50 })).status).toBe("completed");
        expect((await qb.queryStatus()).status).toBe("paused");
        await qb.cont();
      } finally {
        qb.close();
      }
      await waitFor("3 heartbeats on the destination", () => readSerial(b.serial).beats.length >= 3, 30_000, dest);
      const after = readSerial(b.serial);
      expect(after.pattern).toBeNull(); // no boot there: it continued
      expect(after.beats[0][0]).toBeGreaterThanOrEqual(lastOnSource);
      expect(after.beats[0][0]).toBeLessThanOrEqual(lastOnSource + 1);
      for (let i = 1; i < after.beats.length; i++) expect(after.beats[i][0]).toBe(after.beats[i - 1][0] + 1);
      for (const [, md5] of after.beats) expect(md5).toBe(pattern);
      console.log(
        `captures: ${(captured.length / 2 ** 20).toFixed(1)} MiB in ${p1.sections.length} sections, ${(size / 2 ** 20).toFixed(1)} MiB in ${p2.sections.length}; rebuilt streams loaded`,
      );
    } finally {
      qa.close();
    }
  }, 150_000);
});

function stderrOf(p: ChildProcess): string {
  return (p as ChildProcess & { stderrText?: () => string }).stderrText?.() ?? "";
}

function timeout(ms: number, what: string): Promise<never> {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms));
}

/** Whether `b` ends with QEMU's EOF and VM description (the description holds no 0x00 byte: its start is the last 00 06). */
function streamEnded(b: Uint8Array): boolean {
  const at = Buffer.from(b.buffer, b.byteOffset, b.length).lastIndexOf(Buffer.from([0, 6]));
  return at >= 0 && tailComplete(b.subarray(at));
}
