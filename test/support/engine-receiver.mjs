// A pagewire destination in its own process (engine benchmark, cross-process channel tests):
// receives one migration into guest RAM in kernel memory (no file) and prints one JSON line
// {ok, bytes, pages, channels, seconds, cpuSeconds, maxRssMiB, memoryHash}.
//   node engine-receiver.mjs [--channels N] [--hash] [--prefault PAGES]
// --channels N: accept up to N data channels over TCP (the kernel is then shared memory);
// --hash: memoryHash is the XXH3-128 of the whole received memory (hex), for a test to compare;
// --prefault PAGES: the guest memory (PAGES pages) is made and touched before the source
// connects, as a destination host prepares RAM for an incoming guest (first touches of
// fresh memory are then not part of the migration).
import { createKernel, hashBytes128, MigrationDestination, WasmGuestMemory } from "pagewire";
import { TcpListener } from "pagewire/node";

const arg = (name) => {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : process.argv[i + 1];
};
const channels = Number(arg("--channels") ?? 0);
const k = await createKernel({ shared: channels > 0 });
const prefault = arg("--prefault");
let memory = null;
if (prefault) {
  memory = new WasmGuestMemory(k, Number(prefault), { shared: channels > 0 });
  memory.bytes().fill(1);
  memory.bytes().fill(0);
}
const listener = await TcpListener.listen("127.0.0.1", 0);
console.error(`listening on 127.0.0.1:${listener.port}`);
const transport = await listener.accept();
listener.close();
const t0 = performance.now();
const cpu0 = process.cpuUsage();
const dst = new MigrationDestination({
  kernel: k,
  transport,
  // fresh (or prefaulted with zeros) memory reads as zeros: the digest and the applier need not read it
  memory: (pages) =>
    Object.assign(memory ?? (memory = new WasmGuestMemory(k, pages, { shared: channels > 0 })), { zeroed: true }),
  ...(channels > 0 ? { channels: { count: channels, tcp: { host: "127.0.0.1" } } } : {}),
});
const result = await dst.receive();
const cpu = process.cpuUsage(cpu0);
const h = process.argv.includes("--hash") ? hashBytes128(k, memory.bytes()) : null;
console.log(
  JSON.stringify({
    ok: result.committed,
    bytes: result.bytesReceived,
    pages: result.pagesReceived,
    seconds: (performance.now() - t0) / 1000,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
    memoryHash: h ? h.high.toString(16).padStart(16, "0") + h.low.toString(16).padStart(16, "0") : null,
  }),
);
process.exit(0);
