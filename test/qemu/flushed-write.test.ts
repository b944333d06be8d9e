// The destination proxy hands QEMU page bodies as views of its shadow memory, which the
// next pagewire frame may change: a write must count as done only once its bytes left the
// process. Here the reader does not read until the writer has changed its buffers after
// the write resolved; the reader must still get the bytes as they were when written.
import { createServer, connect, type Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { writeFlushed } from "../../src/qemu/flushed-write.js";

async function socketPair(): Promise<{ writer: Socket; reader: Socket; close: () => void }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const accepted = new Promise<Socket>((r) => server.once("connection", r));
  const writer = connect((server.address() as { port: number }).port, "127.0.0.1");
  await new Promise<void>((r) => writer.once("connect", r));
  const reader = await accepted;
  reader.pause(); // the peer (QEMU) is busy: nothing is read yet
  return {
    writer,
    reader,
    close: () => {
      writer.destroy();
      reader.destroy();
      server.close();
    },
  };
}

describe("writes that resolve once flushed", () => {
  it("the peer gets the bytes as they were at the write, even when it reads only after they changed", async () => {
    const { writer, reader, close } = await socketPair();
    let got = 0;
    const received: Buffer[] = [];
    reader.on("data", (d: Buffer) => {
      received.push(d);
      got += d.length;
    });
    reader.pause();
    // fill the kernel's socket buffers until a write stays queued in Node: from here a
    // small write is accepted (write() returns true) yet not flushed
    const filler = new Uint8Array(4096).fill(0x11);
    let filled = 0;
    while (writer.writableLength === 0) {
      writer.write(filler);
      filled += filler.length;
      if (filled > 256 << 20) throw new Error("the socket buffers never filled");
    }
    // two pages as views of a shadow, as the destination proxy writes them
    const shadow = new Uint8Array(2 * 4096);
    shadow.fill(0xaa, 0, 4096);
    shadow.fill(0xbb, 4096);
    const expected = shadow.slice();
    const written = writeFlushed(writer, [shadow.subarray(0, 4096), shadow.subarray(4096)]);
    setTimeout(() => reader.resume(), 50); // the peer reads only later
    await written;
    shadow.fill(0xee); // the next frame changes the pages
    while (got < filled + shadow.length) await new Promise((r) => setTimeout(r, 5));
    expect(Buffer.compare(Buffer.concat(received).subarray(filled), expected)).toBe(0);
    close();
  });

  it("rejects when the connection closes before the bytes left", async () => {
    const { writer, reader, close } = await socketPair();
    const big = new Uint8Array(32 << 20);
    const written = writeFlushed(writer, [big]);
    reader.destroy();
    writer.destroy();
    await expect(written).rejects.toThrow();
    close();
  });
});
