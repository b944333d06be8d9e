// FileMemory as a destination (temporary beside the target, commit by rename) and the
// lock file that keeps two receivers off one output.
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { lockFile, lockPathFor } from "../../src/memory/file-lock.js";
import { FileMemory, temporaryPrefix } from "../../src/memory/file-memory.js";

const root = mkdtempSync(join(tmpdir(), "pagewire-filemem-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dir: string;
let n = 0;
beforeEach(() => {
  dir = join(root, String(n++));
  mkdirSync(dir);
});
afterEach(() => {
  // nothing of a destination is left behind but what a test planted
  expect(readdirSync(dir).filter((f) => f.includes(".partial-") || f.endsWith(".lock"))).toEqual([]);
});

const page = (v: number) => new Uint8Array(4096).fill(v);

describe("FileMemory.createTemporary", () => {
  it("creates nothing until first use; then a random .NAME.partial-<hex> file of mode 0600 beside the target", async () => {
    const out = join(dir, "guest.img");
    const a = FileMemory.createTemporary(out, 1 << 20); // 4 GiB announced: no sparse file yet
    const b = FileMemory.createTemporary(out, 4);
    expect(readdirSync(dir)).toEqual([]);
    expect(a.created).toBe(false);
    expect(basename(a.path)).toMatch(new RegExp(`^${temporaryPrefix(out).replace(/\./g, "\\.")}[0-9a-f]{16}$`));
    expect(a.path).not.toBe(b.path);
    await a.discard(); // never created: nothing to remove
    b.writePage(1, page(9));
    expect(statSync(b.path).size).toBe(4 * 4096);
    expect(statSync(b.path).mode & 0o777).toBe(0o600);
    await b.commit();
    b.close();
    expect(existsSync(b.path)).toBe(false);
    const got = readFileSync(out);
    expect(got.length).toBe(4 * 4096);
    expect(got[4096]).toBe(9);
    expect(statSync(out).mode & 0o777).toBe(0o600);
  });

  it("a symlink planted at the temporary's name is not followed: FILE_CREATE, the link's target untouched", async () => {
    const victim = join(dir, "victim");
    writeFileSync(victim, "precious");
    const out = join(dir, "guest.img");
    const name = `${temporaryPrefix(out)}0123456789abcdef`;
    symlinkSync(victim, join(dir, name));
    const m = FileMemory.createTemporary(out, 2, { name });
    expect(() => m.writePage(0, page(1))).toThrow(expect.objectContaining({ code: "FILE_CREATE" }));
    await m.discard();
    expect(readFileSync(victim, "utf8")).toBe("precious");
    expect(lstatSync(join(dir, name)).isSymbolicLink()).toBe(true); // the planted link is not ours to remove
    expect(existsSync(out)).toBe(false);
    rmSync(join(dir, name));
  });

  it("a dangling symlink or a plain file planted there fails too (O_EXCL)", async () => {
    const out = join(dir, "guest.img");
    const name = `${temporaryPrefix(out)}fedcba9876543210`;
    symlinkSync(join(dir, "would-be-created"), join(dir, name));
    expect(() => FileMemory.createTemporary(out, 1, { name }).writePage(0, page(1))).toThrow(/cannot create temporary/);
    expect(existsSync(join(dir, "would-be-created"))).toBe(false);
    rmSync(join(dir, name));
    writeFileSync(join(dir, name), "x");
    expect(() => FileMemory.createTemporary(out, 1, { name }).writePage(0, page(1))).toThrow(
      expect.objectContaining({ code: "FILE_CREATE" }),
    );
    rmSync(join(dir, name));
  });

  it("commit without replace leaves a file that appeared meanwhile alone and keeps the temporary (OUT_EXISTS)", async () => {
    const out = join(dir, "guest.img");
    const m = FileMemory.createTemporary(out, 1);
    m.writePage(0, page(5));
    writeFileSync(out, "someone else's");
    await expect(m.commit()).rejects.toMatchObject({ code: "OUT_EXISTS" });
    await m.discard(); // the only copy of the received memory stays
    m.close();
    expect(readFileSync(out, "utf8")).toBe("someone else's");
    expect(readFileSync(m.path)[0]).toBe(5);
    rmSync(m.path);
  });

  it("commit with replace keeps the replaced file's mode", async () => {
    const out = join(dir, "guest.img");
    writeFileSync(out, "old");
    chmodSync(out, 0o640);
    const m = FileMemory.createTemporary(out, 1, { replace: true });
    m.writePage(0, page(3));
    await m.commit();
    m.close();
    expect(statSync(out).mode & 0o777).toBe(0o640);
    expect(readFileSync(out)[0]).toBe(3);
  });

  it("removeTemporaries removes what a killed receiver left for that target only", () => {
    const out = join(dir, "guest.img");
    writeFileSync(join(dir, `${temporaryPrefix(out)}00112233aabbccdd`), "");
    writeFileSync(join(dir, ".other.img.partial-00112233aabbccdd"), "");
    expect(FileMemory.removeTemporaries(out).map((p) => basename(p))).toEqual([
      `${temporaryPrefix(out)}00112233aabbccdd`,
    ]);
    expect(readdirSync(dir)).toEqual([".other.img.partial-00112233aabbccdd"]);
    rmSync(join(dir, ".other.img.partial-00112233aabbccdd"));
  });
});

describe("lockFile", () => {
  it("one holder at a time; release removes the lock file", () => {
    const out = join(dir, "guest.img");
    const lock = lockFile(out);
    expect(lock.path).toBe(lockPathFor(out));
    expect(readFileSync(lock.path, "utf8").trim()).toBe(String(process.pid));
    expect(() => lockFile(out)).toThrow(
      expect.objectContaining({ code: "LOCK_HELD", message: expect.stringContaining(`process ${process.pid}`) }),
    );
    lock.release();
    lock.release();
    expect(existsSync(lock.path)).toBe(false);
  });

  it("a lock left by a dead process is taken over and names it", () => {
    const out = join(dir, "guest.img");
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
    writeFileSync(lockPathFor(out), `${dead.stdout}\n`);
    const lock = lockFile(out);
    expect(lock.staleOwner).toBe(Number(dead.stdout));
    expect(readFileSync(lock.path, "utf8").trim()).toBe(String(process.pid));
    lock.release();
  });

  it("an unreadable lock (no PID) is held by someone: LOCK_HELD", () => {
    const out = join(dir, "guest.img");
    writeFileSync(lockPathFor(out), "");
    expect(() => lockFile(out)).toThrow(expect.objectContaining({ code: "LOCK_HELD" }));
    rmSync(lockPathFor(out));
  });
});
