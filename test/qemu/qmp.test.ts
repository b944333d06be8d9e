// The QMP client and migrate-qemu's failure handling, against fake QMP servers (no QEMU).
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PAGE_SIZE } from "../../src/index.js";
import { QmpClient, QmpError } from "../../src/qemu/qmp.js";
import { migrateQemuGuest } from "../../src/qemu/migrate-qemu.js";

type Reply = { return?: unknown; error?: { class: string; desc: string } } | "silent" | "hangup";
type Handler = (command: string, args: Record<string, unknown> | undefined) => Reply;

const dir = mkdtempSync(join(tmpdir(), "pw-qmp-"));
const servers: Server[] = [];
afterAll(() => {
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
/** A fake QEMU monitor: greets, answers with `handler`, logs every command. */
async function fakeQmp(handler: Handler): Promise<{ path: string; log: string[]; sockets: Socket[] }> {
  const path = join(dir, `q${n++}.sock`);
  const log: string[] = [];
  const sockets: Socket[] = [];
  const server = createServer((sock) => {
    sockets.push(sock);
    sock.write(
      JSON.stringify({
        QMP: { version: { qemu: { major: 7, minor: 2, micro: 18 }, package: "" }, capabilities: ["oob"] },
      }) + "\r\n",
    );
    let buf = "";
    sock.on("data", (d) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const msg = JSON.parse(buf.slice(0, i)) as {
          execute: string;
          arguments?: Record<string, unknown>;
          id?: unknown;
        };
        buf = buf.slice(i + 1);
        log.push(msg.execute);
        const reply = msg.execute === "qmp_capabilities" ? { return: {} } : handler(msg.execute, msg.arguments);
        if (reply === "hangup") sock.destroy();
        else if (reply !== "silent") sock.write(JSON.stringify({ ...reply, id: msg.id }) + "\r\n");
      }
    });
    sock.on("error", () => {});
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(path, r));
  return { path, log, sockets };
}

describe("QmpClient", () => {
  it("negotiates capabilities, runs commands, keeps events, types errors", async () => {
    const fake = await fakeQmp((cmd, args) => {
      if (cmd === "query-status") return { return: { running: true, status: "running" } };
      if (cmd === "migrate-set-capabilities") return { return: {} };
      if (cmd === "stop") return { return: {} };
      if (cmd === "nope") return { error: { class: "CommandNotFound", desc: "The command nope has not been found" } };
      if (cmd === "echo") return { return: args };
      return "silent";
    });
    const q = await QmpClient.connect(fake.path, { timeoutMs: 300 });
    try {
      expect(q.version).toBe("7.2.18");
      expect(await q.queryStatus()).toEqual({ running: true, status: "running" });
      await q.setMigrationCapabilities({ "x-ignore-shared": true });
      expect(await q.execute("echo", { a: 1 })).toEqual({ a: 1 });
      await q.stop();
      const heard: string[] = [];
      const off = q.onEvent((e) => heard.push(e.event));
      fake.sockets[0].write(JSON.stringify({ event: "STOP", timestamp: { seconds: 1, microseconds: 2 } }) + "\r\n");
      const err = await q.execute("nope").catch((e: unknown) => e as QmpError);
      expect(err).toBeInstanceOf(QmpError);
      expect(err).toMatchObject({ code: "QMP_COMMAND", qmpClass: "CommandNotFound" });
      expect(q.events.map((e) => e.event)).toEqual(["STOP"]);
      expect(heard).toEqual(["STOP"]); // listeners hear events as they come
      off();
      fake.sockets[0].write(JSON.stringify({ event: "RESUME", timestamp: { seconds: 1, microseconds: 3 } }) + "\r\n");
      await expect(q.execute("silence")).rejects.toMatchObject({ code: "QMP_TIMEOUT" });
      // a late answer to a timed-out command is dropped; the client keeps working
      expect((await q.queryStatus()).status).toBe("running");
      expect(q.events.map((e) => e.event)).toEqual(["STOP", "RESUME"]);
      expect(heard).toEqual(["STOP"]); // … and no longer once unsubscribed
      expect(fake.log).toEqual([
        "qmp_capabilities",
        "query-status",
        "migrate-set-capabilities",
        "echo",
        "stop",
        "nope",
        "silence",
        "query-status",
      ]);
    } finally {
      q.close();
    }
    await expect(q.queryStatus()).rejects.toMatchObject({ code: "QMP_CLOSED" });
  });

  it("reports an unreachable socket, a server that hangs up, a failed migration", async () => {
    await expect(QmpClient.connect(join(dir, "missing.sock"))).rejects.toMatchObject({ code: "QMP_CONNECT" });
    let polls = 0;
    const fake = await fakeQmp((cmd) => {
      if (cmd === "query-migrate")
        return ++polls < 3
          ? { return: { status: "active" } }
          : { return: { status: "failed", "error-desc": "Unable to write to socket" } };
      if (cmd === "quit") return "hangup";
      return { return: {} };
    });
    const q = await QmpClient.connect(fake.path);
    await expect(q.waitForMigration({ pollMs: 1 })).rejects.toMatchObject({
      code: "QMP_MIGRATION_FAILED",
      message: /Unable to write to socket/,
    });
    expect(polls).toBe(3);
    await q.quit(); // hang-up is the expected answer
    await expect(q.queryStatus()).rejects.toMatchObject({ code: "QMP_CLOSED" });
  });

  it("times out on a socket that never greets", async () => {
    const path = join(dir, "mute.sock");
    const server = createServer(() => {});
    servers.push(server);
    await new Promise<void>((r) => server.listen(path, r));
    await expect(QmpClient.connect(path, { connectTimeoutMs: 200 })).rejects.toMatchObject({ code: "QMP_TIMEOUT" });
  });
});

describe("migrateQemuGuest failure handling (fake QEMUs)", () => {
  function ramFiles(tag: string): [string, string] {
    const a = join(dir, `${tag}-a`);
    const ram = new Uint8Array(32 * PAGE_SIZE);
    for (let i = 0; i < ram.length; i += 97) ram[i] = i & 255;
    writeFileSync(a, ram);
    return [a, join(dir, `${tag}-b`)];
  }

  it("QEMU's device-state migration fails after the RAM was copied: the source gets cont", async () => {
    const src = await fakeQmp((cmd) => {
      if (cmd === "query-status") return { return: { running: true, status: "running" } };
      if (cmd === "migrate")
        return { error: { class: "GenericError", desc: "Failed to connect socket: Connection refused" } };
      return { return: {} };
    });
    const dst = await fakeQmp((cmd) =>
      cmd === "query-status" ? { return: { running: false, status: "inmigrate" } } : { return: {} },
    );
    const [a, b] = ramFiles("fail");
    await expect(
      migrateQemuGuest({
        sourceQmp: src.path,
        sourceRam: a,
        destRam: b,
        destQmp: dst.path,
        incoming: "tcp:127.0.0.1:1",
      }),
    ).rejects.toMatchObject({ code: "QMP_COMMAND", message: /Connection refused/ });
    expect(src.log).toEqual([
      "qmp_capabilities",
      "query-status",
      "migrate-set-capabilities",
      "stop",
      "migrate",
      "cont",
    ]);
    expect(dst.log).toEqual(["qmp_capabilities", "query-status", "migrate-set-capabilities"]);
    // the RAM had been copied in place into a file of the source's size
    expect(readFileSync(b).equals(readFileSync(a))).toBe(true);
  });

  it("refuses a destination that is not waiting for an incoming migration, before touching the source", async () => {
    const src = await fakeQmp((cmd) =>
      cmd === "query-status" ? { return: { running: true, status: "running" } } : { return: {} },
    );
    const dst = await fakeQmp((cmd) =>
      cmd === "query-status" ? { return: { running: true, status: "running" } } : { return: {} },
    );
    const [a, b] = ramFiles("busy");
    await expect(
      migrateQemuGuest({
        sourceQmp: src.path,
        sourceRam: a,
        destRam: b,
        destQmp: dst.path,
        incoming: "tcp:127.0.0.1:1",
      }),
    ).rejects.toMatchObject({ code: "QEMU_STATE" });
    expect(src.log).toEqual(["qmp_capabilities", "query-status"]);
    expect(existsSync(b)).toBe(true);
  });

  it("refuses a destination RAM file of another size", async () => {
    const src = await fakeQmp((cmd) =>
      cmd === "query-status" ? { return: { running: true, status: "running" } } : { return: {} },
    );
    const [a, b] = ramFiles("size");
    writeFileSync(b, new Uint8Array(PAGE_SIZE));
    await expect(
      migrateQemuGuest({
        sourceQmp: src.path,
        sourceRam: a,
        destRam: b,
        destQmp: join(dir, "none.sock"),
        incoming: "tcp:127.0.0.1:1",
      }),
    ).rejects.toMatchObject({ code: "FILE_SIZE" });
  });
});

describe("pagewire migrate-qemu (command line)", () => {
  const cli = join(import.meta.dirname, "../../dist/cli/main.js");
  it("documents its options and rejects incomplete ones with exit 2", () => {
    const help = spawnSync(process.execPath, [cli, "migrate-qemu", "--help"], { encoding: "utf8" });
    expect(help.status).toBe(0);
    for (const opt of [
      "--source-qmp",
      "--source-ram",
      "--dest-ram",
      "--dest-qmp",
      "--incoming",
      "--dest-command",
      "--bandwidth",
      "--mode",
    ])
      expect(help.stdout).toContain(opt);
    const missing = spawnSync(process.execPath, [cli, "migrate-qemu", "--source-qmp", "x"], { encoding: "utf8" });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/--source-ram FILE|--source-ram is required/);
    const mode = spawnSync(
      process.execPath,
      [
        cli,
        "migrate-qemu",
        "--source-qmp",
        "a",
        "--source-ram",
        "b",
        "--dest-ram",
        "c",
        "--dest-qmp",
        "d",
        "--incoming",
        "127.0.0.1:1",
        "--mode",
        "postcopy",
      ],
      { encoding: "utf8" },
    );
    expect(mode.status).toBe(2);
    expect(mode.stderr).toMatch(/--mode/);
  });

  it("exits 1 with one line when the source QMP socket is not there", () => {
    const r = spawnSync(
      process.execPath,
      [
        cli,
        "migrate-qemu",
        "--source-qmp",
        join(dir, "nothing.sock"),
        "--source-ram",
        "b",
        "--dest-ram",
        "c",
        "--dest-qmp",
        "d",
        "--incoming",
        "127.0.0.1:1",
      ],
      { encoding: "utf8" },
    );
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/cannot connect to QMP socket/);
  });
});
