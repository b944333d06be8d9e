// A one-line progress bar on stderr (or another terminal stream), redrawn at most 10 times
// a second, only when the stream is a terminal (CI logs stay readable); cleared when done.
interface Terminal {
  write(text: string): void;
  isTTY?: boolean;
  columns?: number;
}

export class ProgressBar {
  readonly enabled: boolean;
  readonly #out: Terminal;
  #last = 0;
  #shown = false;
  constructor(enabled?: boolean, out: Terminal = process.stderr) {
    this.#out = out;
    this.enabled = enabled ?? Boolean(out.isTTY);
  }

  /** Draws `fraction` (0..1, or null for no bar) and a label. */
  update(fraction: number | null, label: string): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (now - this.#last < 100) return;
    this.#last = now;
    const width = 24;
    const bar =
      fraction === null
        ? ""
        : `[${"#".repeat(Math.round(Math.min(1, Math.max(0, fraction)) * width)).padEnd(width, "-")}] `;
    const cols = this.#out.columns || 100;
    this.#out.write(`\r${(bar + label).slice(0, cols - 1).padEnd(Math.min(cols - 1, 80))}`);
    this.#shown = true;
  }

  done(): void {
    if (this.enabled && this.#shown) this.#out.write(`\r${" ".repeat(Math.min((this.#out.columns || 100) - 1, 80))}\r`);
    this.#shown = false;
  }
}
