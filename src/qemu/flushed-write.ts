// Writes that resolve only once their bytes have left this process (handed to the kernel),
// not merely queued: the destination proxy writes page bodies as views of its shadow of the
// guest's RAM, and the next pagewire frame may change those pages. A write still queued in
// Node when that happens would send the newer bytes under a page whose older content the
// proxy recorded as sent — QEMU could then miss a later change back to that content.
import type { Socket } from "node:net";

/** Writes `pieces` in order (corked: one writev) and resolves once all of them are flushed; rejects if the socket closes first. */
export function writeFlushed(socket: Socket, pieces: readonly Uint8Array[]): Promise<void> {
  if (!pieces.length) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const closed = () => reject(new Error("the connection closed before the write was flushed"));
    socket.once("close", closed);
    socket.cork();
    for (let i = 0; i < pieces.length - 1; i++) socket.write(pieces[i]);
    // the last piece's callback runs once every earlier piece has been written as well
    socket.write(pieces[pieces.length - 1], (err) => {
      socket.off("close", closed);
      // a destroyed socket calls back its pending writes without an error (Node 20): not flushed
      if (err || socket.destroyed) reject(err ?? new Error("the connection closed before the write was flushed"));
      else resolve();
    });
    socket.uncork();
  });
}
