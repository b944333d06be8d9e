// Plain TCP sink for the engine benchmark's ceiling: accepts one connection, counts bytes
// until the sender closes, prints {bytes, seconds, cpuSeconds, maxRssMiB} as JSON.
import net from "node:net";
const server = net.createServer((socket) => {
  let bytes = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  socket.on("data", (d) => (bytes += d.length));
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
