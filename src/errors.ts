/**
 * Every error pagewire throws is a PagewireError with a stable `code` (for programs)
 * and a message that carries the numbers (for people).
 */
export class PagewireError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The WebAssembly module could not be found, compiled or instantiated. */
export class KernelLoadError extends PagewireError {}

/** Kernel memory could not satisfy an allocation, or a region was misused. */
export class KernelMemoryError extends PagewireError {}

/** An argument is outside what the operation accepts (page index, sizes that differ …). */
export class PagewireRangeError extends PagewireError {}
