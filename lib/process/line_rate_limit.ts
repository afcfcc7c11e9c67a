/**
 * A limit on lines per second, for a child's output: what is over the limit
 * is dropped and counted, and the count is reported once its window ends, so
 * a child that floods its output can neither take over the log nor make it
 * grow faster than the limit.
 *
 * @module
 */

/** Options of {@linkcode LineRateLimit}. */
export interface LineRateLimitOptions {
  /** Lines let through per window; 0 lets every line through. */
  limit: number;
  /** The window's length in milliseconds. @default {1000} */
  windowMs?: number;
  /** Told how many lines were dropped, once their window has ended (or on close). */
  onDropped: (count: number) => void;
  /** Milliseconds, monotonic. @default {performance.now} */
  clock?: () => number;
}

/**
 * Lets at most `limit` lines through per fixed window.
 *
 * @example Usage
 * ```ts
 * import { LineRateLimit } from "./line_rate_limit.ts";
 * const limit = new LineRateLimit({ limit: 2, onDropped: (n) => console.log(`${n} dropped`) });
 * console.log(limit.admit(), limit.admit(), limit.admit()); // true true false
 * limit.close(); // "1 dropped"
 * ```
 */
export class LineRateLimit {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #onDropped: (count: number) => void;
  readonly #clock: () => number;
  #windowStart = -Infinity;
  #admitted = 0;
  #dropped = 0;
  #timer: ReturnType<typeof setTimeout> | undefined = undefined;

  /** @param options The limit, its window and whom to tell about drops. */
  constructor(options: LineRateLimitOptions) {
    this.#limit = options.limit;
    this.#windowMs = options.windowMs ?? 1000;
    this.#onDropped = options.onDropped;
    this.#clock = options.clock ?? (() => performance.now());
  }

  /** True when the next line may be logged; false when it is dropped (and counted). */
  admit(): boolean {
    if (this.#limit === 0) return true;
    const now = this.#clock();
    if (now - this.#windowStart >= this.#windowMs) {
      this.#report();
      this.#windowStart = now;
      this.#admitted = 0;
    }
    if (this.#admitted < this.#limit) {
      this.#admitted++;
      return true;
    }
    this.#dropped++;
    // Reported when the window ends even if no line follows; the timer must not hold the process.
    if (this.#timer === undefined) {
      const timer = setTimeout(() => {
        this.#timer = undefined;
        this.#report();
      }, Math.max(0, this.#windowStart + this.#windowMs - now));
      Deno.unrefTimer(timer);
      this.#timer = timer;
    }
    return false;
  }

  /** Reports the lines dropped so far, if any. Idempotent; lines may still come after. */
  close(): void {
    this.#report();
  }

  #report(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const dropped = this.#dropped;
    this.#dropped = 0;
    if (dropped > 0) this.#onDropped(dropped);
  }
}
