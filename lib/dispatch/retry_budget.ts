/**
 * A retry budget (Finagle's, Envoy's `retry_budget`): retries may add at most
 * `ratio` of the requests of the last `windowMs`, plus `minPerSecond`, so a
 * failing host cannot make every request count double and retries cannot
 * multiply load in an outage.
 *
 * @module
 */

/** Options of {@linkcode RetryBudget}. */
export interface RetryBudgetOptions {
  /** Retries allowed per request sent. @default {0.2} */
  ratio?: number;
  /** Retries always allowed per second, however few requests came. @default {10} */
  minPerSecond?: number;
  /** The window (ms). @default {10000} */
  windowMs?: number;
  /** The clock (ms). @default {performance.now} */
  now?: () => number;
}

const BUCKETS = 10;

/**
 * @example Usage
 * ```ts
 * import { RetryBudget } from "./retry_budget.ts";
 * const budget = new RetryBudget({ ratio: 0.5, minPerSecond: 0, now: () => 0 });
 * for (let i = 0; i < 4; i++) budget.deposit();
 * console.log(budget.tryRetry(), budget.tryRetry(), budget.tryRetry()); // true true false
 * ```
 */
export class RetryBudget {
  readonly #ratio: number;
  readonly #floor: number;
  readonly #bucketMs: number;
  readonly #now: () => number;
  readonly #requests = new Float64Array(BUCKETS);
  readonly #retries = new Float64Array(BUCKETS);
  #bucket = 0; // index of the bucket of #bucketStart
  #bucketStart = -Infinity;

  /** @param options Ratio, floor, window and clock. */
  constructor(options: RetryBudgetOptions = {}) {
    this.#ratio = options.ratio ?? 0.2;
    const windowMs = options.windowMs ?? 10_000;
    this.#floor = (options.minPerSecond ?? 10) * windowMs / 1000;
    this.#bucketMs = windowMs / BUCKETS;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Records a request sent (each one earns `ratio` of a retry). */
  deposit(): void {
    this.#advance();
    this.#requests[this.#bucket]!++;
  }

  /** Takes one retry from the budget; false when it is spent. */
  tryRetry(): boolean {
    this.#advance();
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < BUCKETS; i++) {
      requests += this.#requests[i]!;
      retries += this.#retries[i]!;
    }
    if (retries + 1 > this.#floor + this.#ratio * requests) return false;
    this.#retries[this.#bucket]!++;
    return true;
  }

  #advance(): void {
    const now = this.#now();
    if (this.#bucketStart === -Infinity) {
      this.#bucketStart = now;
      return;
    }
    let steps = Math.floor((now - this.#bucketStart) / this.#bucketMs);
    if (steps <= 0) return;
    this.#bucketStart += steps * this.#bucketMs;
    steps = Math.min(steps, BUCKETS);
    for (let i = 0; i < steps; i++) {
      this.#bucket = (this.#bucket + 1) % BUCKETS;
      this.#requests[this.#bucket] = 0;
      this.#retries[this.#bucket] = 0;
    }
  }
}
