// A caller's AbortSignal turned into the engine's cancellation: while armed, an abort makes
// every raced wait reject with a CANCELLED PagewireError (the migration then fails as any
// failure before the decision does: the source runs the guest). At the decision the side
// disarms it: from there a cancel can no longer undo what the peer may already act on.
import { PagewireError } from "../errors.js";

export class Cancellation {
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort: () => void;
  readonly #cancelled: Promise<never>;
  #reject!: (err: PagewireError) => void;
  #error: PagewireError | null = null;
  #armed = true;

  constructor(signal: AbortSignal | undefined, what: string) {
    this.#signal = signal;
    this.#cancelled = new Promise<never>((_, reject) => (this.#reject = reject));
    this.#cancelled.catch(() => {});
    this.#onAbort = () => {
      if (!this.#armed || this.#error) return;
      const reason = signal?.reason;
      const why = reason instanceof Error ? reason.message : reason !== undefined ? String(reason) : "";
      this.#error = new PagewireError("CANCELLED", `${what} cancelled by the caller${why ? `: ${why}` : ""}`, {
        cause: reason,
      });
      this.#reject(this.#error);
    };
    if (signal?.aborted) this.#onAbort();
    else signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** True once a cancel took effect. */
  get cancelled(): boolean {
    return this.#error !== null;
  }

  /** The CANCELLED error once a cancel took effect, else null. */
  get error(): PagewireError | null {
    return this.#error;
  }

  throwIfCancelled(): void {
    if (this.#error) throw this.#error;
  }

  /** `promise`, or the cancellation, whichever comes first (just `promise` once disarmed). */
  race<T>(promise: Promise<T>): Promise<T> {
    if (!this.#signal || !this.#armed) return promise;
    this.throwIfCancelled();
    promise.catch(() => {});
    return Promise.race([promise, this.#cancelled]);
  }

  /** The decision is taken: a later abort of the signal is ignored. */
  disarm(): void {
    this.#armed = false;
  }

  dispose(): void {
    this.#signal?.removeEventListener("abort", this.#onAbort);
  }
}
