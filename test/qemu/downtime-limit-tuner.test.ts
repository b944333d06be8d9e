// qemu-proxy send --qmp's downtime-limit tuner against a fake QEMU monitor (no QEMU): it
// reads the user's downtime-limit, sets the user's value × (link bytes ÷ QEMU bytes) over its
// window, never above the user's value nor below 1 ms, stops at freeze(), gives up quietly
// when QEMU refuses, and restores the user's value at stop().
import { createServer, type Server } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DowntimeLimitTuner, scaledDowntimeLimit } from "../../src/qemu/downtime-limit-tuner.js";
import { QmpClient } from "../../src/qemu/qmp.js";

const dir = mkdtempSync(join(tmpdir(), "pw-dlt-"));
const servers: Server[] = [];
afterAll(() => {
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
/** A monitor holding one downtime-limit; `refuse` makes migrate-set-parameters fail. */
async function fakeMonitor(initial: number, o: { refuse?: boolean } = {}) {
  const path = join(dir, `m${n++}.sock`);
  const state = { downtimeLimit: initial, sets: [] as number[] };
  const server = createServer((sock) => {
    sock.write(
      JSON.stringify({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 } }, capabilities: [] } }) + "\n",
    );
    let buf = "";
    sock.on("data", (d) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const m = JSON.parse(buf.slice(0, i)) as { execute: string; arguments?: Record<string, number>; id: string };
        buf = buf.slice(i + 1);
        let reply: unknown = { return: {} };
        if (m.execute === "query-migrate-parameters")
          reply = { return: { "downtime-limit": state.downtimeLimit, "max-bandwidth": 134217728 } };
        else if (m.execute === "migrate-set-parameters") {
          if (o.refuse) reply = { error: { class: "GenericError", desc: "no" } };
          else {
            state.downtimeLimit = m.arguments!["downtime-limit"];
            state.sets.push(state.downtimeLimit);
          }
        }
        sock.write(JSON.stringify({ ...(reply as object), id: m.id }) + "\n");
      }
    });
    sock.on("error", () => {});
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(path, r));
  return { path, state };
}

const MiB = 2 ** 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("scaledDowntimeLimit", () => {
  it("scales by link bytes ÷ QEMU bytes, within [1, base]", () => {
    expect(scaledDowntimeLimit(300, 10 * MiB, 6 * MiB)).toBe(180);
    expect(scaledDowntimeLimit(300, 10 * MiB, 20 * MiB)).toBe(300); // never above the user's value
    expect(scaledDowntimeLimit(300, 10 * MiB, 1)).toBe(1); // 0 would never converge
    expect(scaledDowntimeLimit(300, 0, 5)).toBe(300); // no QEMU bytes: nothing to scale by
  });
});

describe("DowntimeLimitTuner", () => {
  it("follows the ratio while QEMU iterates, holds at freeze, restores the user's value at stop", async () => {
    const m = await fakeMonitor(300);
    const qmp = await QmpClient.connect(m.path);
    const bytes = { qemuBytes: 0, linkBytes: 0 };
    let ratio = 0.5;
    const t = await DowntimeLimitTuner.start(qmp, { sample: () => ({ ...bytes }), intervalMs: 10, windowMs: 200 });
    try {
      expect(t.base).toBe(300);
      const feed = async (ms: number) => {
        for (const end = performance.now() + ms; performance.now() < end; ) {
          bytes.qemuBytes += MiB;
          bytes.linkBytes += MiB * ratio;
          await sleep(10);
        }
      };
      await feed(400);
      expect(m.state.downtimeLimit).toBe(150);
      ratio = 0.25; // the window forgets the older bytes
      await feed(500);
      expect(m.state.downtimeLimit).toBe(75);
      t.freeze(); // QEMU stopped its guest: no more changes
      ratio = 1;
      await feed(300);
      expect(m.state.downtimeLimit).toBe(75);
      expect(t.current).toBe(75);
      await t.stop();
      expect(m.state.downtimeLimit).toBe(300);
      expect(m.state.sets.at(-1)).toBe(300);
      expect(t.history).toEqual(m.state.sets);
    } finally {
      qmp.close();
    }
  });

  it("waits for enough QEMU bytes before it changes anything", async () => {
    const m = await fakeMonitor(200);
    const qmp = await QmpClient.connect(m.path);
    const t = await DowntimeLimitTuner.start(qmp, {
      sample: () => ({ qemuBytes: 1000, linkBytes: 10 }),
      intervalMs: 10,
    });
    await sleep(100);
    await t.stop();
    qmp.close();
    expect(m.state.sets).toEqual([]); // no change made, none to undo
  });

  it("a QEMU that refuses the parameter: tuning stops, said once, nothing thrown", async () => {
    const m = await fakeMonitor(300, { refuse: true });
    const qmp = await QmpClient.connect(m.path);
    const lines: string[] = [];
    const bytes = { qemuBytes: 0, linkBytes: 0 };
    const t = await DowntimeLimitTuner.start(qmp, {
      sample: () => ({ ...bytes }),
      intervalMs: 10,
      log: (l) => lines.push(l),
    });
    for (let i = 0; i < 30; i++) {
      bytes.qemuBytes += MiB;
      bytes.linkBytes += MiB / 2;
      await sleep(10);
    }
    await t.stop();
    qmp.close();
    expect(lines.filter((l) => /could not set QEMU's downtime-limit/.test(l))).toHaveLength(1);
    expect(t.current).toBe(300);
  });
});
