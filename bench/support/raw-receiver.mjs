// Plain TCP sink for the engine benchmark's ceilings: accepts one connection, counts bytes
// until the sender closes, prints {bytes, seconds, cpuSeconds, maxRssMiB} as JSON.
//   node raw-receiver.mjs [--store BYTES]
// --store: every byte is also copied into one fresh buffer of BYTES (what a destination
// must do with guest RAM: first touches of fresh memory are part of the cost).
import net from "node:net";
const i = process.argv.indexOf("--store");
const store = i < 0 ? null : new Uint8Array(Number(process.argv[i + 1]));
const server = net.createServer((socket) => {
  let bytes = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  socket.on("data", (d) => {
    if (store) store.set(d.subarray(0, Math.max(0, Math.min(d.length, store.length - bytes))), bytes);
    bytes += d.length;
  });
  socket.on("end", () => {
    const cpu = process.cpuUsage(cpu0);
    console.log(
      JSON.stringify({
        bytes,
        seconds: (performance.now() - t0) / 1000,
        cpuSeconds: (cpu.user + cpu.system) / 1e6,
        maxRssMiB: process.resourceUsage().maxRSS / 1024,
      }),
    );
    socket.end();
    server.close();
  });
});
server.listen(0, "127.0.0.1", () => console.error(`listening on 127.0.0.1:${server.address().port}`));
