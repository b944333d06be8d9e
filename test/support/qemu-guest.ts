// A tiny QEMU guest for the migrate-qemu test and bench: Debian's kernel, an initramfs of
// busybox-static plus an init script whose workload keeps a known pattern in guest RAM
// (8 MiB of random data in the initramfs' page cache, its MD5 printed at boot), dirties
// about 1 MiB per tick and prints "hb N MD5" on the serial console every tick, N counting
// up and MD5 recomputed from the pattern each time.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";

export const QEMU = "qemu-system-x86_64";
const BUSYBOX = ["/bin/busybox", "/usr/bin/busybox"];

/** Why the guest cannot run here, or null when QEMU, busybox-static and a kernel are present. */
export function missingTools(): string | null {
  if (spawnSync(QEMU, ["--version"]).status !== 0) return `${QEMU} not found (apt-get install qemu-system-x86)`;
  if (!busyboxPath()) return "busybox not found (apt-get install busybox-static)";
  if (!kernelPath()) return "no /boot/vmlinuz-* (apt-get install linux-image-amd64)";
  return null;
}

function busyboxPath(): string | null {
  for (const p of BUSYBOX) {
    if (!existsSync(p)) continue;
    // a dynamically linked busybox (an ELF with PT_INTERP) would need its libraries in the initramfs
    if (!hasInterpreter(readFileSync(p))) return p;
  }
  return null;
}

function hasInterpreter(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) return true; // not a 64-bit ELF: do not trust it
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const size = elf.readUInt16LE(0x36);
  const count = elf.readUInt16LE(0x38);
  for (let i = 0; i < count; i++) if (elf.readUInt32LE(phoff + i * size) === 3) return true;
  return false;
}

/**
 * What a QEMU test lacks to run (null: nothing). With CI set a lack is an error (the test
 * must run there); otherwise the test skips, saying why.
 */
export function qemuTestMissing(test: string): string | null {
  const missing = missingTools();
  if (missing && process.env.CI) throw new Error(`CI is set but ${test} cannot run: ${missing}`);
  if (missing) console.log(`skipping ${test}: ${missing}`);
  return missing;
}

export function kernelPath(): string | null {
  const k = readdirSync("/boot")
    .filter((f) => /^vmlinuz-.*amd64$/.test(f))
    .sort();
  return k.length ? join("/boot", k[k.length - 1]) : null;
}

const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t devtmpfs dev /dev 2>/dev/null
dd if=/dev/urandom of=/pattern bs=1024k count=8 2>/dev/null
s=$(md5sum /pattern)
echo "pattern \${s%% *}"
n=0
while true; do
  n=$((n+1))
  dd if=/dev/urandom of=/scratch bs=64k count=16 2>/dev/null
  s=$(md5sum /pattern)
  echo "hb $n \${s%% *}"
  sleep 0.2
done
`;

/** An uncompressed newc cpio archive (what the kernel unpacks as initramfs). */
function cpio(entries: { name: string; mode: number; data?: Uint8Array; rdev?: [number, number] }[]): Buffer {
  const parts: Buffer[] = [];
  const pad = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  let ino = 1;
  const add = (name: string, mode: number, data: Uint8Array, rdev: [number, number]) => {
    const hex = (v: number) => v.toString(16).padStart(8, "0");
    const fields = [ino++, mode, 0, 0, 1, 0, data.length, 0, 0, rdev[0], rdev[1], name.length + 1, 0];
    const header = Buffer.from("070701" + fields.map(hex).join(""), "ascii");
    const nameBuf = Buffer.from(name + "\0", "utf8");
    parts.push(header, nameBuf, pad(header.length + nameBuf.length), Buffer.from(data), pad(data.length));
  };
  for (const e of entries) add(e.name, e.mode, e.data ?? new Uint8Array(0), e.rdev ?? [0, 0]);
  add("TRAILER!!!", 0, new Uint8Array(0), [0, 0]);
  return Buffer.concat(parts);
}

/** Writes DIR/initramfs.cpio and returns its path. */
export function buildInitramfs(dir: string): string {
  const bb = busyboxPath();
  if (!bb) throw new Error("busybox-static is missing");
  const dirs = ["bin", "dev", "proc", "sys", "tmp"];
  const archive = cpio([
    ...dirs.map((d) => ({ name: d, mode: 0o40755 })),
    { name: "dev/console", mode: 0o20600, rdev: [5, 1] },
    { name: "bin/busybox", mode: 0o100755, data: readFileSync(bb) },
    { name: "bin/sh", mode: 0o120777, data: Buffer.from("busybox") },
    { name: "init", mode: 0o100755, data: Buffer.from(INIT) },
  ]);
  const out = join(dir, "initramfs.cpio");
  writeFileSync(out, archive);
  return out;
}

export interface GuestFiles {
  kernel: string;
  initrd: string;
}

/** The QEMU command line of the test guest (128 MiB of RAM in `ram`, a shared file). */
export function guestArgs(
  g: GuestFiles,
  o: { ram?: string; qmp: string; serial: string; incoming?: string; memMiB?: number },
): string[] {
  const mem = o.memMiB ?? 128;
  return [
    "-accel",
    "tcg",
    // RAM in a shared file (`ram`), or QEMU's ordinary anonymous RAM
    ...(o.ram ? ["-machine", "pc,memory-backend=mem", "-m", `${mem}M`] : ["-machine", "pc", "-m", `${mem}M`]),
    ...(o.ram ? ["-object", `memory-backend-file,id=mem,size=${mem}M,mem-path=${o.ram},share=on`] : []),
    "-kernel",
    g.kernel,
    "-initrd",
    g.initrd,
    "-append",
    "console=ttyS0 rdinit=/init quiet panic=-1",
    "-serial",
    `file:${o.serial}`,
    "-display",
    "none",
    "-monitor",
    "none",
    "-nic",
    "none",
    "-vga",
    "none",
    "-no-reboot",
    "-qmp",
    `unix:${o.qmp},server=on,wait=off`,
    ...(o.incoming ? ["-incoming", o.incoming] : []),
  ];
}

export function startQemu(args: string[]): ChildProcess {
  const child = spawn(QEMU, args, { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  (child as ChildProcess & { stderrText: () => string }).stderrText = () => err;
  return child;
}

/** The heartbeats in a serial log: [counter, md5] pairs, and the pattern's MD5 from boot. */
export function readSerial(file: string): { pattern: string | null; beats: [number, string][] } {
  const text = existsSync(file) ? readFileSync(file, "utf8") : "";
  const pattern = /^pattern ([0-9a-f]{32})\s*$/m.exec(text)?.[1] ?? null;
  const beats: [number, string][] = [];
  for (const m of text.matchAll(/^hb (\d+) ([0-9a-f]{32})\s*$/gm)) beats.push([Number(m[1]), m[2]]);
  return { pattern, beats };
}

/** Waits until `pred` holds, polling every 100 ms. */
export async function waitFor(
  what: string,
  pred: () => boolean,
  timeoutMs: number,
  child?: ChildProcess,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (child && child.exitCode !== null)
      throw new Error(
        `${what}: QEMU exited with ${child.exitCode}: ${(child as ChildProcess & { stderrText?: () => string }).stderrText?.() ?? ""}`,
      );
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for QEMU's -incoming). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
