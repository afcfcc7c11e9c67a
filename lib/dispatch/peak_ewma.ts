/**
 * Peak EWMA of latency (Finagle): a sample above the average replaces it at
 * once (a host that slows down is noticed on its first slow answer), a lower
 * one pulls it down with a weight that decays with the time since the last
 * sample.
 *
 * @module
 */

/**
 * @example Usage
 * ```ts
 * import { PeakEwma } from "./peak_ewma.ts";
 * let t = 0;
 * const ewma = new PeakEwma({ decayMs: 1000, now: () => t });
 * ewma.observe(10);
 * t = 1000;
 * ewma.observe(2);
 * console.log(ewma.value.toFixed(2)); // 4.94
 * ```
 */
export class PeakEwma {
  readonly #decayMs: number;
  readonly #now: () => number;
  #value = 0;
  #stamp = 0;

  /** @param options Decay time constant (ms) and clock. */
  constructor(options: { decayMs?: number; now?: () => number } = {}) {
    this.#decayMs = options.decayMs ?? 10_000;
    this.#now = options.now ?? (() => performance.now());
  }

  /** The average (ms); 0 until the first sample. */
  get value(): number {
    return this.#value;
  }

  /** Adds a sample (ms). */
  observe(rtt: number): void {
    const now = this.#now();
    if (this.#value === 0 || rtt > this.#value) this.#value = rtt;
    else {
      const w = Math.exp(-Math.max(0, now - this.#stamp) / this.#decayMs);
      this.#value = this.#value * w + rtt * (1 - w);
    }
    this.#stamp = now;
  }
}
