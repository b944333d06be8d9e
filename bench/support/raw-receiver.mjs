// Plain TCP sink for the engine benchmark's ceilings: connects to the sender on the port
// given, reads every byte into one reusable buffer (Node's onread: no allocation per read)
// until the sender closes, prints {bytes, seconds, cpuSeconds, maxRssMiB} as JSON.
//   node raw-receiver.mjs PORT [--store BYTES]
// --store: every byte is also copied into one fresh buffer of BYTES (what a destination
// must do with guest RAM: first touches of fresh memory are part of the cost).
import net from "node:net";
const port = Number(process.argv[2]);
const i = process.argv.indexOf("--store");
const store = i < 0 ? null : new Uint8Array(Number(process.argv[i + 1]));
let bytes = 0;
let t0 = 0;
let cpu0 = null;
const buffer = new Uint8Array(256 << 10);
const socket = net.connect({
  port,
  host: "127.0.0.1",
  onread: {
    buffer,
    callback(n, buf) {
      if (store) store.set(buf.subarray(0, Math.max(0, Math.min(n, store.length - bytes))), bytes);
      bytes += n;
      return true;
    },
  },
});
socket.on("connect", () => {
  t0 = performance.now();
  cpu0 = process.cpuUsage();
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
});
