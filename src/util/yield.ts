/** Lets timers and I/O callbacks run (a microtask yield would not). */
export function yieldToEventLoop(): Promise<void> {
  const g = globalThis as { setImmediate?: (f: () => void) => void };
  return new Promise((resolve) => (g.setImmediate ? g.setImmediate(resolve) : viaMessage(resolve)));
}

// Browsers have no setImmediate, and clamp a setTimeout(0) that runs again and again to
// ~4 ms (a floor of ~1 s on a post-copy push of 16 MiB in 16-page chunks): a message to
// ourselves is a task without the clamp.
let port: MessagePort | null = null;
const waiting: Array<() => void> = [];

function viaMessage(resolve: () => void): void {
  if (!port) {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => waiting.shift()?.();
    port = channel.port2;
  }
  waiting.push(resolve);
  port.postMessage(0);
}
