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
 * pace.sent();
 * pace.sent();
 * t = 0.4;
 * pace.done();
 * pace.done(); // two answers in 0.4 ms of work
 * console.log(pace.us); // 200
 * ```
 */
export class ServicePace {
  readonly #window: number;
  readonly #now: () => number;
  #outstanding = 0;
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

  /** Requests sent and not done. */
  get outstanding(): number {
    return this.#outstanding;
  }

  /** A request was sent. */
  sent(): void {
    if (this.#outstanding++ === 0) this.#busyFrom = this.#now();
  }

  /**
   * A request is done: answered (late answers to calls already answered
   * `TIMEOUT` or cancelled included: they were work), or not (its
   * connection closed, its requester left and nobody waits for it).
   */
  done(answered = true): void {
    if (this.#outstanding === 0) return;
    this.#outstanding--;
    if (answered) this.#answers++;
    if (this.#outstanding > 0 && this.#answers < this.#window) return;
    const now = this.#now();
    this.#busyMs += now - this.#busyFrom;
    this.#busyFrom = this.#outstanding > 0 ? now : -1;
    if (this.#answers < this.#window) return;
    const sample = (this.#busyMs * 1000) / this.#answers;
    this.#us = sample > this.#us ? sample : this.#us + (sample - this.#us) / 4;
    this.#busyMs = 0;
    this.#answers = 0;
  }
}
