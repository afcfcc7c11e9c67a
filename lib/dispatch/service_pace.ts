/**
 * How long a host takes per answer while it has work: the wall time during
 * which it had requests outstanding, divided by the answers it gave. For a
 * worker that serves one request at a time it is the service time; for a
 * server that works on many at once, the time between answers. It tells a
 * cheap method from a costly one without a clock read per request: one per
 * window of answers and one per busy period.
 *
 * @module
 */

/** Options of {@linkcode ServicePace}. */
export interface ServicePaceOptions {
  /** Answers per sample. @default {16} */
  window?: number;
  /** The clock (ms). @default {performance.now} */
  now?: () => number;
}

/**
 * @example Usage
 * ```ts
 * import { ServicePace } from "./service_pace.ts";
 * let t = 0;
 * const pace = new ServicePace({ window: 2, now: () => t });
 * pace.started(); // a request sent to an idle host
 * t = 0.4;
 * pace.answered(1);
 * pace.answered(0); // two answers in 0.4 ms of work
 * console.log(pace.us); // 200
 * ```
 */
export class ServicePace {
  readonly #window: number;
  readonly #now: () => number;
  #busyFrom = -1; // when the busy time not yet counted began; -1 while idle
  #busyMs = 0;
  #answers = 0;
  #us = 0;

  /** @param options Window and clock. */
  constructor(options: ServicePaceOptions = {}) {
    this.#window = options.window ?? 16;
    this.#now = options.now ?? (() => performance.now());
  }

  /**
   * Microseconds of work per answer, 0 until measured. A slower sample is
   * taken at once, a faster one pulls the value down by a quarter: a host
   * that turns slow is spread over on its next window.
   */
  get us(): number {
    return this.#us;
  }

  /** A request was sent to the host while it had none outstanding. */
  started(): void {
    if (this.#busyFrom < 0) this.#busyFrom = this.#now();
  }

  /** Its outstanding requests ended without answers (a connection broke). */
  idle(): void {
    if (this.#busyFrom < 0) return;
    this.#busyMs += this.#now() - this.#busyFrom;
    this.#busyFrom = -1;
  }

  /** An answer came; `outstanding` requests remain. */
  answered(outstanding: number): void {
    this.#answers++;
    if (outstanding > 0 && this.#answers < this.#window) return;
    const now = this.#now();
    if (this.#busyFrom >= 0) this.#busyMs += now - this.#busyFrom;
    this.#busyFrom = outstanding > 0 ? now : -1;
    if (this.#answers < this.#window) return;
    const sample = (this.#busyMs * 1000) / this.#answers;
    this.#us = sample > this.#us ? sample : this.#us + (sample - this.#us) / 4;
    this.#busyMs = 0;
    this.#answers = 0;
  }
}
