/**
 * Tells a crash loop: a worker (slot) that exited `threshold` times within
 * `windowMs`, whether it died while starting or after it was ready (one
 * that dies on every request is as much a loop as one that never starts).
 *
 * @module
 */

/** Options of {@linkcode CrashLoopGuard}. */
export interface CrashLoopOptions {
  /** Exits within the window that make a loop. @default {5} */
  threshold?: number;
  /** The window (ms). @default {10000} */
  windowMs?: number;
  /** The clock (ms). @default {performance.now} */
  now?: () => number;
}

/**
 * Counts unexpected exits in a sliding window.
 *
 * @example Usage
 * ```ts
 * import { CrashLoopGuard } from "./crash_loop.ts";
 * let t = 0;
 * const guard = new CrashLoopGuard({ threshold: 3, windowMs: 1000, now: () => t });
 * console.log(guard.record(), guard.record(), guard.record()); // false false true
 * t = 5000;
 * console.log(guard.record()); // false: the old exits left the window
 * ```
 */
export class CrashLoopGuard {
  readonly #threshold: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  #exits: number[] = [];

  /** @param options Threshold, window and clock. */
  constructor(options: CrashLoopOptions = {}) {
    this.#threshold = options.threshold ?? 5;
    this.#windowMs = options.windowMs ?? 10_000;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Exits counted in the window now. */
  get count(): number {
    this.#trim(this.#now());
    return this.#exits.length;
  }

  /** Records an unexpected exit; true when it completes a loop. */
  record(): boolean {
    const now = this.#now();
    this.#trim(now);
    this.#exits.push(now);
    return this.#exits.length >= this.#threshold;
  }

  /** Forgets the exits (after the cooldown, a fresh start). */
  reset(): void {
    this.#exits = [];
  }

  #trim(now: number): void {
    while (this.#exits.length > 0 && now - this.#exits[0]! > this.#windowMs) this.#exits.shift();
  }
}
