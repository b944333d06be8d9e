// QEMU's own live migration (plain, xbzrle), QEMU's migration through `pagewire qemu-proxy`
// and `pagewire migrate-qemu` on the same 128 MiB TCG guest (test/support/qemu-guest.ts: 8 MiB
// pattern checked every tick, about 1 MiB dirtied per tick), at 10 and 100 MiB/s, one run
// each, a freshly booted guest per run.
//   Run: npm run build && npx tsx bench/qemu-migration.bench.ts [--only qemu,proxy,…] [--runs N] [--mibs 10,100]
//   [--pagewire-only] [--scan-workers N]: only pagewire migrate-qemu's runs (no results file)
//   (needs QEMU, busybox-static, a kernel); PROXY_PROF=DIR: the proxy processes write CPU profiles there;
//   --trace: the proxies' log lines and engine events, in ms after the source's STOP (PAGEWIRE_TRACE)
// How each method's bandwidth is limited: QEMU direct — QEMU's max-bandwidth = the link rate
// (QEMU lifts it in its completion stage); qemu-proxy — QEMU's max-bandwidth unlimited into
// the local proxy, pagewire's rate limit = the link rate between the proxies (lifted when
// QEMU's completion record arrives, as QEMU lifts its own); migrate-qemu — pagewire's rate
// limit on the RAM rounds (not on the final round), QEMU's device state unlimited.
// Measures: total time (QEMU: query-migrate total-time; pagewire: start → destination
// running), downtime = source paused → destination running (QEMU: the source's STOP event to
// the destination's RESUME event, QMP timestamps; pagewire: QMP stop sent → QMP cont
// answered), MiB sent (QEMU: ram.transferred of its stream; pagewire: its frames plus QEMU's
// device-state stream). Every run checks that the destination's heartbeat goes on with the
// pattern intact. Writes bench/results/qemu-migration.json.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { QmpClient, type QmpEvent } from "../src/qemu/qmp.js";
import {
  buildInitramfs,
  freePort,
  guestArgs,
  kernelPath,
  missingTools,
  QEMU,
  readSerial,
  startQemu,
  waitFor,
} from "../test/support/qemu-guest.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const MiB = 2 ** 20;
const missing = missingTools();
if (missing) {
  console.error(`cannot run: ${missing}`);
  process.exit(1);
}
const dir = mkdtempSync(join(tmpdir(), "pw-qemu-bench-"));
const files = { kernel: kernelPath()!, initrd: buildInitramfs(dir) };
let runNo = 0;
const tracing = process.argv.includes("--trace");
const at = process.argv.indexOf("--scan-workers");
const scanWorkers = at > 0 ? process.argv[at + 1] : undefined;

interface Row {
  method: string;
  bandwidthMiBs: number;
  totalMs: number;
  downtimeMs: number;
  sentMiB: number;
  beatsOk: boolean;
  finalRoundMs?: number;
  finalScanMs?: number;
  deviceMs?: number;
  /** QEMU's dirty-sync-count (its pre-copy rounds). */
  rounds?: number;
  /** qemu-proxy --qmp: the downtime-limit QEMU stopped with (the bench sets 300 ms). */
  downtimeLimitMs?: number;
  /** qemu-proxy: pages in pagewire's last round (sent while the guest is stopped). */
  finalPages?: number;
  /** CPU ms both QEMU processes used during the migration (the source's vCPU thread included). */
  qemuCpuMs?: number;
  /** qemu-proxy: each proxy process's CPU ms from listening to its end (user + system, all its threads). */
  proxyCpuMs?: { send: number; receive: number };
}

/** CPU ms (user + system, all threads) the processes used so far, summed. */
function cpuOf(pids: Array<number | undefined>): number {
  let ms = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ms += (Number(f[11]) + Number(f[12])) * 10; // clock ticks of 10 ms (CLK_TCK 100)
    } catch {} // gone
  }
  return ms;
}

const eventTime = (e: QmpEvent | undefined) =>
  e?.timestamp ? e.timestamp.seconds * 1000 + e.timestamp.microseconds / 1000 : NaN;

type Method = "qemu" | "qemu-xbzrle" | "proxy" | "proxy-qmp" | "pagewire";

async function run(method: Method, mibs: number): Promise<Row> {
  const id = `${process.pid}-${runNo++}`;
  const a = { ram: `/dev/shm/pw-bench-${id}-a`, qmp: join(dir, `${id}-a.qmp`), serial: join(dir, `${id}-a.log`) };
  const b = { ram: `/dev/shm/pw-bench-${id}-b`, qmp: join(dir, `${id}-b.qmp`), serial: join(dir, `${id}-b.log`) };
  const port = await freePort();
  const incoming = `tcp:127.0.0.1:${port}`;
  // proxy-qmp: a second monitor on the source for the sending proxy (this benchmark holds the first)
  const sourceQmp = join(dir, `${id}-a-proxy.qmp`);
  const source = startQemu([
    ...guestArgs(files, a),
    ...(method === "proxy-qmp" ? ["-qmp", `unix:${sourceQmp},server=on,wait=off`] : []),
  ]);
  let dest: ReturnType<typeof startQemu> | null = null;
  try {
    await waitFor("the source's 10th heartbeat", () => readSerial(a.serial).beats.length >= 10, 120_000, source);
    const pattern = readSerial(a.serial).pattern;
    let row: Row;
    if (method === "proxy" || method === "proxy-qmp") {
      // destination QEMU paused after its load (-S); the proxies in two processes
      const bIn = `unix:${join(dir, `${id}-b.in`)}`;
      // a second monitor for this benchmark's events: the receiving proxy holds the first
      const observer = join(dir, `${id}-b-observer.qmp`);
      dest = startQemu([
        ...guestArgs(files, { ...b, incoming: bIn }),
        "-S",
        "-qmp",
        `unix:${observer},server=on,wait=off`,
      ]);
      await waitFor("the destination's QMP socket", () => existsSync(b.qmp), 30_000, dest);
      const cli = (args: string[]) => {
        const c = spawn(
          process.execPath,
          [
            ...(process.env.PROXY_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.PROXY_PROF}`] : []),
            join(root, "dist/cli/main.js"),
            "qemu-proxy",
            ...args,
            "--json",
          ],
          {
            stdio: ["ignore", "pipe", "pipe"],
            env: tracing ? { ...process.env, PAGEWIRE_TRACE: "1" } : process.env,
          },
        );
        let out = "";
        let err = "";
        c.stdout!.on("data", (d: Buffer) => (out += d));
        c.stderr!.on("data", (d: Buffer) => (err += d));
        const done = new Promise<string>((res, rej) =>
          c.on("exit", (code) =>
            code === 0 ? res(out) : rej(new Error(`qemu-proxy ${args[0]} exited ${code}: ${err}`)),
          ),
        );
        done.catch(() => {});
        const listening = (async () => {
          while (!/listening on/.test(err)) {
            if (c.exitCode !== null) throw new Error(`qemu-proxy ${args[0]} exited: ${err}`);
            await new Promise((r) => setTimeout(r, 20));
          }
          return Number(/listening on \S*:(\d+)\s/.exec(err)?.[1] ?? 0);
        })();
        return { done, listening, child: c, stderr: () => err };
      };
      const rx = cli(["receive", "--listen", "127.0.0.1:0", "--incoming", bIn, "--qmp", b.qmp, "--insecure"]);
      const srcUri = `unix:${join(dir, `${id}-src.sock`)}`;
      const tx = cli([
        "send",
        "--listen",
        srcUri,
        "--to",
        `127.0.0.1:${await rx.listening}`,
        "--bandwidth",
        `${mibs}MiB/s`,
        ...(method === "proxy-qmp" ? ["--qmp", sourceQmp] : []),
      ]);
      await tx.listening;
      const qa = await QmpClient.connect(a.qmp);
      const qb = await QmpClient.connect(observer);
      try {
        await qa.setMigrationCapabilities({ "return-path": true });
        await qa.setMigrationParameters({ "max-bandwidth": 2 ** 40, "downtime-limit": 300 });
        const cpu0 = cpuOf([source.pid, dest.pid]);
        await qa.migrate(srcUri);
        const [txOut, rxOut] = await Promise.all([tx.done, rx.done]);
        const info = await qa.waitForMigration({ timeoutMs: 300_000, pollMs: 20 });
        const qemuCpuMs = cpuOf([source.pid, dest.pid]) - cpu0;
        const rxCpu = (JSON.parse(rxOut) as { cpuMs: { user: number; system: number } }).cpuMs;
        await qb.waitForStatus(["running"], { timeoutMs: 10_000 });
        const stop = qa.events.filter((e) => e.event === "STOP").at(-1);
        const resume = qb.events.filter((e) => e.event === "RESUME").at(-1);
        if (tracing) printTrace(eventTime(stop), eventTime(resume), { send: tx.stderr(), receive: rx.stderr() });
        const j = JSON.parse(txOut) as {
          bytesSent: number;
          stream: { bytes: number };
          downtimeLimit?: { final: number };
          cpuMs: { user: number; system: number };
          report: { rounds: { dirtied: number }[] };
        };
        row = {
          method: `QEMU migrate via pagewire qemu-proxy${method === "proxy-qmp" ? " --qmp" : ""}`,
          bandwidthMiBs: mibs,
          totalMs: info["total-time"] ?? NaN,
          downtimeMs: eventTime(resume) - eventTime(stop),
          sentMiB: j.bytesSent / MiB,
          beatsOk: false,
          rounds: info.ram?.["dirty-sync-count"],
          downtimeLimitMs: j.downtimeLimit?.final,
          finalPages: j.report.rounds.at(-1)?.dirtied,
          qemuCpuMs,
          proxyCpuMs: { send: j.cpuMs.user + j.cpuMs.system, receive: rxCpu.user + rxCpu.system },
        };
      } finally {
        qa.close();
        qb.close();
        rx.child.kill("SIGKILL");
        tx.child.kill("SIGKILL");
      }
    } else if (method === "pagewire") {
      const destCommand = "exec " + [QEMU, ...guestArgs(files, { ...b, incoming })].map((s) => `'${s}'`).join(" ");
      const cli = spawn(
        process.execPath,
        [
          join(root, "dist/cli/main.js"),
          "migrate-qemu",
          "--json",
          "--source-qmp",
          a.qmp,
          "--source-ram",
          a.ram,
          "--dest-ram",
          b.ram,
          "--dest-qmp",
          b.qmp,
          "--incoming",
          incoming.slice(4),
          "--dest-command",
          destCommand,
          "--bandwidth",
          `${mibs}MiB/s`,
          ...(scanWorkers ? ["--scan-workers", scanWorkers] : []),
        ],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      let out = "";
      cli.stdout!.on("data", (d: Buffer) => (out += d));
      const code = await new Promise<number | null>((r) => cli.on("exit", r));
      if (code !== 0) throw new Error(`migrate-qemu exited with ${code}`);
      const j = JSON.parse(out) as {
        totalTime: number;
        downtime: number;
        bytesSent: number;
        finalRoundTime: number;
        finalScanTime: number;
        deviceTime: number;
      };
      row = {
        method: "pagewire migrate-qemu",
        bandwidthMiBs: mibs,
        totalMs: j.totalTime,
        downtimeMs: j.downtime,
        sentMiB: j.bytesSent / MiB,
        beatsOk: false,
        finalRoundMs: j.finalRoundTime,
        finalScanMs: j.finalScanTime,
        deviceMs: j.deviceTime,
      };
    } else {
      dest = startQemu(guestArgs(files, { ...b, incoming }));
      await waitFor("the destination's QMP socket", () => existsSync(b.qmp), 30_000, dest);
      const qa = await QmpClient.connect(a.qmp);
      const qb = await QmpClient.connect(b.qmp);
      try {
        await qa.setMigrationCapabilities({ xbzrle: method === "qemu-xbzrle" });
        await qb.setMigrationCapabilities({ xbzrle: method === "qemu-xbzrle" });
        await qa.setMigrationParameters({ "max-bandwidth": mibs * MiB, "downtime-limit": 300 });
        const cpu0 = cpuOf([source.pid, dest.pid]);
        await qa.migrate(incoming);
        const info = await qa.waitForMigration({ timeoutMs: 300_000, pollMs: 20 });
        const qemuCpuMs = cpuOf([source.pid, dest.pid]) - cpu0;
        await qb.waitForStatus(["running"], { timeoutMs: 10_000 });
        const stop = qa.events.filter((e) => e.event === "STOP").at(-1);
        const resume = qb.events.filter((e) => e.event === "RESUME").at(-1);
        row = {
          method: method === "qemu" ? "QEMU migrate" : "QEMU migrate + xbzrle",
          bandwidthMiBs: mibs,
          totalMs: info["total-time"] ?? NaN,
          downtimeMs: eventTime(resume) - eventTime(stop),
          sentMiB: (info.ram?.transferred ?? NaN) / MiB,
          beatsOk: false,
          rounds: info.ram?.["dirty-sync-count"],
          qemuCpuMs,
        };
      } finally {
        qa.close();
        qb.close();
      }
    }
    // the guest goes on in the destination, pattern intact
    const last = readSerial(a.serial).beats.at(-1)![0];
    await waitFor(
      "3 heartbeats on the destination",
      () => readSerial(b.serial).beats.filter(([n]) => n > last).length >= 3,
      30_000,
    );
    row.beatsOk = readSerial(b.serial).beats.every(([, md5]) => md5 === pattern);
    console.error(
      `${row.method} @ ${mibs} MiB/s: ${row.totalMs.toFixed(0)} ms, downtime ${row.downtimeMs.toFixed(1)} ms, ${row.sentMiB.toFixed(1)} MiB, heartbeat ${row.beatsOk ? "ok" : "BAD"}${row.downtimeLimitMs !== undefined ? `, QEMU stopped at downtime-limit ${row.downtimeLimitMs} ms` : ""}${row.rounds !== undefined ? `, ${row.rounds} rounds` : ""}${row.finalPages !== undefined ? `, ${row.finalPages} pages in the last round` : ""}${row.qemuCpuMs !== undefined ? `; CPU ms: QEMUs ${row.qemuCpuMs}` : ""}${row.proxyCpuMs ? `, proxies ${row.proxyCpuMs.send} + ${row.proxyCpuMs.receive}` : ""}${row.deviceMs !== undefined ? ` (final round + commit ${row.finalRoundMs!.toFixed(1)} ms, of which the scan of A ${row.finalScanMs!.toFixed(1)} ms; QEMU device state + cont ${row.deviceMs.toFixed(1)} ms)` : ""}`,
    );
    return row;
  } finally {
    source.kill("SIGKILL");
    dest?.kill("SIGKILL");
    const qb = await QmpClient.connect(b.qmp, { connectTimeoutMs: 1000 }).catch(() => null); // a destination migrate-qemu started
    await qb?.quit().catch(() => {});
    qb?.close();
    rmSync(a.ram, { force: true });
    rmSync(b.ram, { force: true });
  }
}

const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const ALL: Method[] = ["qemu", "qemu-xbzrle", "proxy", "proxy-qmp", "pagewire"];
/** The proxies' trace lines from 1 s before STOP on, both sides merged in time order. */
function printTrace(stop: number, resume: number, sides: Record<string, string>): void {
  const lines: Array<[number, string]> = [];
  for (const [side, text] of Object.entries(sides))
    for (const m of text.matchAll(/^trace (\d+\.\d+) (.*)$/gm))
      if (Number(m[1]) >= stop - 1000) lines.push([Number(m[1]), `${side.padEnd(7)} ${m[2].slice(0, 160)}`]);
  lines.push([stop, "QEMU    STOP (source)"], [resume, "QEMU    RESUME (destination)"]);
  lines.sort((a, b) => a[0] - b[0]);
  for (const [t, l] of lines) console.log(`${(t - stop).toFixed(1).padStart(8)} ms  ${l}`);
}

const only = process.argv.includes("--pagewire-only") ? ["pagewire"] : arg("--only")?.split(",");
const methods = ALL.filter((m) => !only || only.includes(m));
const runs = Number(arg("--runs") ?? 1);
const rows: Row[] = [];
for (const mibs of (arg("--mibs") ?? "10,100").split(",").map(Number))
  for (let r = 0; r < runs; r++) for (const m of methods) rows.push(await run(m, mibs));
rmSync(dir, { recursive: true, force: true });

console.log("| method | bandwidth | total time | downtime | MiB sent | rounds | heartbeat after |");
console.log("|---|---:|---:|---:|---:|---:|---|");
for (const r of rows) {
  console.log(
    `| ${r.method} | ${r.bandwidthMiBs} MiB/s | ${(r.totalMs / 1000).toFixed(2)} s | ${r.downtimeMs.toFixed(1)} ms | ${r.sentMiB.toFixed(1)} | ${r.rounds ?? "–"} | ${r.beatsOk ? "ok" : "BAD"} |`,
  );
}
if (only) process.exit(0);
mkdirSync(join(root, "bench/results"), { recursive: true });
writeFileSync(
  join(root, "bench/results/qemu-migration.json"),
  JSON.stringify({ date: new Date().toISOString(), rows }, null, 2) + "\n",
);
