// pagewire destination for the engine benchmark: receives one migration into guest RAM in
// kernel memory (no file), prints {ok, seconds, cpuSeconds, maxRssMiB, bytes} as JSON.
import { createKernel, MigrationDestination, WasmGuestMemory } from "pagewire";
import { TcpListener } from "pagewire/node";
const k = await createKernel({ shared: false });
const listener = await TcpListener.listen("127.0.0.1", 0);
console.error(`listening on 127.0.0.1:${listener.port}`);
const transport = await listener.accept();
listener.close();
const t0 = performance.now();
const cpu0 = process.cpuUsage();
const dst = new MigrationDestination({ kernel: k, transport, memory: (pages) => new WasmGuestMemory(k, pages) });
const result = await dst.receive();
const cpu = process.cpuUsage(cpu0);
console.log(
  JSON.stringify({
    ok: result.committed,
    bytes: result.bytesReceived,
    seconds: (performance.now() - t0) / 1000,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
  }),
);
process.exit(0);
