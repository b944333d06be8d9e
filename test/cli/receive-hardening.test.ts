// `pagewire receive` against the attacks and accidents a receiver must survive: each runs the built
// CLI and checks the exit code, the one-line message, and that no temporary or lock
// file is left in the output's directory.
import { spawn, spawnSync, execFileSync, type ChildProcess } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { randomBytes } from "node:crypto";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { createKernel, PAGE_SIZE } from "../../src/index.js";
import { MigrationAbortedError, MigrationSource } from "../../src/engine/source.js";
import { WasmGuestMemory } from "../../src/memory/wasm-guest-memory.js";
import { connectTcp } from "../../src/transport/tcp.js";
import type { Transport } from "../../src/transport/transport.js";
import { FrameType } from "../../src/wire/frame.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const cli = join(root, "dist/cli/main.js");
const base = mkdtempSync(join(tmpdir(), "pagewire-recv-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}
const children: ChildProcess[] = [];
let dir: string;
let n = 0;
beforeEach(() => {
  dir = join(base, String(n++));
  mkdirSync(dir);
});
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  expect(readdirSync(dir).filter((f) => f.includes(".partial-") || f.endsWith(".lock"))).toEqual([]);
});

function start(args: string[]) {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  const done = new Promise<Exit>((resolve) => child.on("exit", (code) => resolve({ code, stdout, stderr })));
  return { child, done, stderr: () => stderr };
}

/** A receiver on a free port; `port` resolves once it listens and rejects if it exits first. */
function receiver(out: string, args: string[]) {
  const rx = start(["receive", "--listen", "127.0.0.1:0", "--out", out, ...args]);
  const port = new Promise<number>((resolve, reject) => {
    rx.child.stderr!.on("data", () => {
      const m = /listening on [^:]+:(\d+)/.exec(rx.stderr());
      if (m) resolve(Number(m[1]));
    });
    rx.done.then((r) => reject(new Error(`receiver exited ${r.code} before listening: ${r.stderr}`)));
  });
  return { ...rx, port };
}

function send(port: number, mem: string, args: string[] = []): Promise<Exit> {
  return start(["send", "--memory", mem, "--to", `127.0.0.1:${port}`, ...args]).done;
}

function receiveSync(args: string[]) {
  return spawnSync(process.execPath, [cli, "receive", "--listen", "127.0.0.1:0", ...args], { encoding: "utf8" });
}

async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function memoryImage(pages: number): string {
  const file = join(dir, "ram.img");
  const b = Buffer.alloc(pages * 4096);
  for (let p = 0; p < pages; p++) for (let i = 0; i < 4096; i += 61) b[p * 4096 + i] = ((p * 31 + i) & 0xff) | 1;
  writeFileSync(file, b);
  return file;
}

function keyFile(name = "psk", text = "a pre-shared key, 32 bytes long!"): string {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
}

/** An idle TCP connection to the receiver; `closed` resolves when the receiver drops it. */
async function idleConnection(port: number) {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => {});
  socket.resume(); // read (and drop) the receiver's CHALLENGE, so that its close is seen
  await new Promise((r) => socket.once("connect", r));
  const closed = new Promise<number>((r) => socket.once("close", () => r(Date.now())));
  return { socket, closed };
}

const lastLine = (s: string) => s.trim().split("\n").at(-1)!;

describe("receive refuses to start unsafely", () => {
  it("no --key and no --insecure: exit 2 with one line, nothing created", () => {
    const r = receiveSync(["--out", join(dir, "guest.img")]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/no --key.*--insecure/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("--insecure warns on stderr and migrates; the new file has mode 0600", async () => {
    const mem = memoryImage(64);
    const out = join(dir, "guest.img");
    const rx = receiver(out, ["--insecure"]);
    const s = await send(await rx.port, mem);
    const r = await rx.done;
    expect(s.code, s.stderr).toBe(0);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: --insecure: any process that can connect can write/);
    expect(Buffer.compare(readFileSync(out), readFileSync(mem))).toBe(0);
    expect(statSync(out).mode & 0o777).toBe(0o600);
  });

  it("an existing --out without --force: exit 2 before listening, the file unchanged", () => {
    const out = join(dir, "guest.img");
    writeFileSync(out, "keep me");
    chmodSync(out, 0o644);
    const r = receiveSync(["--out", out, "--key", keyFile()]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/exists \(--force replaces it\)/);
    expect(readFileSync(out, "utf8")).toBe("keep me");
    expect(statSync(out).mode & 0o777).toBe(0o644);
  });

  it("--out problems are found before listening: missing directory, a directory, a symlink", () => {
    const key = keyFile();
    mkdirSync(join(dir, "sub"));
    symlinkSync(join(dir, "elsewhere"), join(dir, "link.img"));
    for (const [out, message] of [
      [join(dir, "missing", "guest.img"), /directory .* does not exist/],
      [join(dir, "sub"), /is a directory/],
      [join(dir, "link.img"), /symbolic link/],
    ] as const) {
      const r = receiveSync(["--out", out, "--key", key, "--force"]);
      expect(r.status, out).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/listening/);
    }
    expect(existsSync(join(dir, "elsewhere"))).toBe(false);
  });

  it("--force replaces an existing --out and keeps its mode", async () => {
    const mem = memoryImage(64);
    const key = keyFile();
    const out = join(dir, "guest.img");
    writeFileSync(out, "old image");
    chmodSync(out, 0o640);
    const rx = receiver(out, ["--key", key, "--force"]);
    const s = await send(await rx.port, mem, ["--key", key]);
    const r = await rx.done;
    expect(s.code, s.stderr).toBe(0);
    expect(r.code, r.stderr).toBe(0);
    expect(Buffer.compare(readFileSync(out), readFileSync(mem))).toBe(0);
    expect(statSync(out).mode & 0o777).toBe(0o640);
  });

  it("a second receiver on the same --out exits 1 with one line; SIGTERM ends the first and removes its lock", async () => {
    const key = keyFile();
    const out = join(dir, "guest.img");
    const first = receiver(out, ["--key", key]);
    await first.port;
    const second = receiveSync(["--out", out, "--key", key]);
    expect(second.status).toBe(1);
    expect(second.stderr.trim().split("\n")).toHaveLength(1);
    expect(second.stderr).toMatch(new RegExp(`locked by process ${first.child.pid}`));
    first.child.kill("SIGTERM");
    const r = await first.done;
    expect(r.code).toBe(143);
    expect(lastLine(r.stderr)).toMatch(/stopped by SIGTERM; nothing written to/);
    expect(existsSync(out)).toBe(false);
  });

  it("a port that cannot be listened on: exit 1 with one line, the lock released", async () => {
    const busy = net.createServer().listen(0, "127.0.0.1");
    await new Promise((r) => busy.once("listening", r));
    const port = (busy.address() as net.AddressInfo).port;
    const r = spawnSync(
      process.execPath,
      [cli, "receive", "--listen", `127.0.0.1:${port}`, "--out", join(dir, "guest.img"), "--key", keyFile()],
      { encoding: "utf8" },
    );
    busy.close();
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/cannot listen on 127\.0\.0\.1:\d+/);
  });

  it("a lock left by a killed receiver is taken over and its temporary removed", async () => {
    const out = join(dir, "guest.img");
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
      encoding: "utf8",
    }).stdout;
    writeFileSync(join(dir, ".guest.img.lock"), `${dead}\n`);
    writeFileSync(join(dir, ".guest.img.partial-0123456789abcdef"), Buffer.alloc(4096));
    const rx = receiver(out, ["--key", keyFile()]);
    await rx.port;
    expect(rx.stderr()).toMatch(new RegExp(`took over the lock of process ${dead} .*removed its temporary`));
    expect(readFileSync(join(dir, ".guest.img.lock"), "utf8").trim()).toBe(String(rx.child.pid));
    rx.child.kill("SIGINT");
    expect((await rx.done).code).toBe(130);
  });
});

describe("receive keeps listening until a sender authenticates", () => {
  it("an idle connection does not block the real sender; it is closed once the session is taken", async () => {
    const mem = memoryImage(64);
    const key = keyFile();
    const out = join(dir, "guest.img");
    const rx = receiver(out, ["--key", key]);
    const port = await rx.port;
    const idle = await idleConnection(port);
    const s = await send(port, mem, ["--key", key]);
    const r = await rx.done;
    expect(s.code, s.stderr).toBe(0);
    expect(r.code, r.stderr).toBe(0);
    await idle.closed;
    expect(r.stderr).toMatch(/refused: another sender was accepted/);
    expect(Buffer.compare(readFileSync(out), readFileSync(mem))).toBe(0);
  });

  it("no HELLO within --handshake-timeout: closed; garbage: refused at once; each one line; then the sender migrates", async () => {
    const mem = memoryImage(16);
    const key = keyFile();
    const out = join(dir, "guest.img");
    const rx = receiver(out, ["--key", key, "--handshake-timeout", "1s"]);
    const port = await rx.port;
    const t0 = Date.now();
    const idle = await idleConnection(port);
    const garbage = await idleConnection(port);
    garbage.socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    const [garbageClosed, idleClosed] = await Promise.all([garbage.closed, idle.closed]);
    expect(garbageClosed).toBeLessThan(idleClosed);
    expect(idleClosed - t0).toBeGreaterThanOrEqual(950);
    await until("two refusals", () => (rx.stderr().match(/refused/g) ?? []).length === 2);
    expect(rx.stderr()).toMatch(/127\.0\.0\.1:\d+: refused: bad frame magic/);
    expect(rx.stderr()).toMatch(/127\.0\.0\.1:\d+: refused: no verified HELLO within 1 s\n/);
    const s = await send(port, mem, ["--key", key]);
    const r = await rx.done;
    expect(s.code, s.stderr).toBe(0);
    expect(r.code, r.stderr).toBe(0);
  });

  it("--max-pending: a connection beyond it is closed at once; the sender gets in once the handshake timeout frees a place", async () => {
    const mem = memoryImage(16);
    const key = keyFile();
    const out = join(dir, "guest.img");
    const rx = receiver(out, ["--key", key, "--max-pending", "2", "--handshake-timeout", "1s"]);
    const port = await rx.port;
    const idle = [await idleConnection(port), await idleConnection(port)];
    const third = await idleConnection(port);
    const [thirdClosed, ...idleClosed] = await Promise.all([third.closed, ...idle.map((c) => c.closed)]);
    expect(thirdClosed).toBeLessThan(Math.min(...idleClosed)); // at once, not at the handshake timeout
    await until("the drop line", () => /refused: 2 connections already wait for their handshake/.test(rx.stderr()));
    const s = await send(port, mem, ["--key", key]);
    const r = await rx.done;
    expect(s.code, s.stderr).toBe(0);
    expect(r.code, r.stderr).toBe(0);
  });

  it("a sender with the wrong key is refused (one line), then the right one migrates", async () => {
    const mem = memoryImage(64);
    const key = keyFile();
    const wrong = keyFile("other", "other key other key other key!!");
    const out = join(dir, "guest.img");
    const rx = receiver(out, ["--key", key]);
    const port = await rx.port;
    const bad = await send(port, mem, ["--key", wrong]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    await until("the refusal", () => /refused: .*HMAC/.test(rx.stderr()));
    expect(existsSync(out)).toBe(false);
    const s = await send(port, mem, ["--key", key]);
    const r = await rx.done;
    expect(s.code, s.stderr).toBe(0);
    expect(r.code, r.stderr).toBe(0);
    expect(Buffer.compare(readFileSync(out), readFileSync(mem))).toBe(0);
  });
});

describe("receive bounds what a sender can make it do", () => {
  it("a HELLO announcing more than --max-memory fails with MEMORY_TOO_LARGE; no file is created", async () => {
    const mem = memoryImage(32); // 128 KiB
    const key = keyFile();
    const out = join(dir, "guest.img");
    const rx = receiver(out, ["--key", key, "--max-memory", "64KiB"]);
    const s = await send(await rx.port, mem, ["--key", key]);
    const r = await rx.done;
    expect(s.code).toBe(1);
    expect(r.code).toBe(1);
    expect(lastLine(r.stderr)).toBe(
      "pagewire: source memory of 131072 bytes (32 pages, 128.0 KiB) exceeds --max-memory 65536 bytes",
    );
    expect(readdirSync(dir).sort()).toEqual(["psk", "ram.img"]);
  });

  for (const [signal, code] of [
    ["SIGTERM", 143],
    ["SIGINT", 130],
  ] as const) {
    it(`${signal} mid-migration: exit ${code} with one line; no temporary, no lock, no --out`, async () => {
      const mem = join(dir, "ram.img");
      writeFileSync(mem, randomBytes(1024 * 4096)); // 4 MiB that do not compress, at 1 MB/s
      const key = keyFile();
      const out = join(dir, "guest.img");
      const rx = receiver(out, ["--key", key]);
      const sender = send(await rx.port, mem, ["--key", key, "--bandwidth", "1MB/s"]);
      await until("the temporary", () => readdirSync(dir).some((f) => f.startsWith(".guest.img.partial-")));
      rx.child.kill(signal);
      const killedAt = Date.now();
      const r = await rx.done;
      expect(r.code).toBe(code);
      expect(lastLine(r.stderr)).toBe(`pagewire: receive stopped by ${signal}; nothing written to ${out}`);
      const sent = await sender;
      expect(sent.code, sent.stdout + sent.stderr).toBe(1);
      // nothing listens any more: the sender's abort notice gives up at the refused connection,
      // not after the 30 s reconnect window
      expect(Date.now() - killedAt).toBeLessThan(20_000);
      expect(existsSync(out)).toBe(false);
    });
  }
});

describe("receive stopped after acknowledging the commit", () => {
  it("SIGTERM between COMMIT_ACK and ACTIVATE: the receiver sends ABORT, so the source resumes instead of taking silence as success", async () => {
    const out = join(dir, "guest.img");
    const rx = receiver(out, ["--insecure"]);
    const port = await rx.port;
    const k = await createKernel();
    const mem = new WasmGuestMemory(k, 64);
    mem.bytes().fill(0x5a, 0, 8 * PAGE_SIZE);
    const raw = await connectTcp("127.0.0.1", port);
    // hold COMMIT_ACK back from the source until the receiver, which now waits for ACTIVATE, has been stopped
    const transport: Transport = {
      get bytesSent() {
        return raw.bytesSent;
      },
      get bytesReceived() {
        return raw.bytesReceived;
      },
      send: (frame) => raw.send(frame),
      close: () => raw.close(),
      async receive() {
        const frame = await raw.receive();
        if (frame && frame[5] === FrameType.COMMIT_ACK) {
          rx.child.kill("SIGTERM");
          await rx.done;
        }
        return frame;
      },
    };
    let resumed = false;
    const source = new MigrationSource({
      kernel: k,
      memory: mem,
      transport,
      mode: "stop-and-copy",
      onResume: () => {
        resumed = true;
      },
    });
    const err = await source.migrate().then(
      () => null,
      (e: unknown) => e,
    );
    const r = await rx.done;
    expect(r.code).toBe(143);
    expect(lastLine(r.stderr)).toBe(`pagewire: receive stopped by SIGTERM; nothing written to ${out}`);
    expect(err).toBeInstanceOf(MigrationAbortedError);
    expect(String((err as Error).message)).toMatch(/stopped by SIGTERM/);
    expect(resumed).toBe(true);
    expect(existsSync(out)).toBe(false);
    mem.dispose();
  });
});

describe("receive with TLS client certificates", () => {
  it("--tls-client-ca: senders without a certificate or with one from another CA are refused; one signed by the CA migrates", async () => {
    const ssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    ssl("req", "-x509", ...ec, "-subj", "/CN=pagewire test CA", "-days", "1", "-keyout", "ca.key", "-out", "ca.pem");
    ssl(
      "req",
      "-x509",
      ...ec,
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-days",
      "1",
      "-keyout",
      "server.key",
      "-out",
      "server.pem",
    );
    ssl("req", ...ec, "-subj", "/CN=sender", "-keyout", "client.key", "-out", "client.csr");
    ssl(
      "x509",
      "-req",
      "-in",
      "client.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "1",
      "-out",
      "client.pem",
    );
    ssl("req", "-x509", ...ec, "-subj", "/CN=rogue", "-days", "1", "-keyout", "rogue.key", "-out", "rogue.pem");
    const mem = memoryImage(64);
    const out = join(dir, "guest.img");
    const rx = receiver(out, [
      "--tls-cert",
      join(dir, "server.pem"),
      "--tls-key",
      join(dir, "server.key"),
      "--tls-client-ca",
      join(dir, "ca.pem"),
    ]);
    const port = await rx.port;
    const trust = ["--tls-ca", join(dir, "server.pem")];
    const none = await send(port, mem, trust);
    expect(none.code).toBe(1);
    const rogue = await send(port, mem, [
      ...trust,
      "--tls-cert",
      join(dir, "rogue.pem"),
      "--tls-key",
      join(dir, "rogue.key"),
    ]);
    expect(rogue.code).toBe(1);
    await until("two refusals", () => (rx.stderr().match(/refused: TLS handshake failed/g) ?? []).length === 2);
    expect(existsSync(out)).toBe(false);
    const s = await send(port, mem, [
      ...trust,
      "--tls-cert",
      join(dir, "client.pem"),
      "--tls-key",
      join(dir, "client.key"),
    ]);
    const r = await rx.done;
    expect(s.code, s.stderr).toBe(0);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/warning/);
    expect(Buffer.compare(readFileSync(out), readFileSync(mem))).toBe(0);
  });
});
