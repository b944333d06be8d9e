// A one-line progress bar on stderr, redrawn at most 10 times a second, only when stderr
// is a terminal (CI logs stay readable); cleared when done.
export class ProgressBar {
  readonly enabled: boolean;
  #last = 0;
  #shown = false;
  constructor(enabled = Boolean(process.stderr.isTTY)) {
    this.enabled = enabled;
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
    const cols = process.stderr.columns || 100;
    process.stderr.write(`\r${(bar + label).slice(0, cols - 1).padEnd(Math.min(cols - 1, 80))}`);
    this.#shown = true;
  }

  done(): void {
    if (this.enabled && this.#shown)
      process.stderr.write(`\r${" ".repeat(Math.min((process.stderr.columns || 100) - 1, 80))}\r`);
    this.#shown = false;
  }
}
