/**
 * Exponential backoff with jitter, as Deno's standard library computes it:
 * `delay = (1 - jitter x random) x min(cap, base x 2^attempt)`.
 *
 * @module
 */

/** Options of {@linkcode backoffDelay}. */
export interface BackoffOptions {
  /** First delay (ms). @default {100} */
  baseMs?: number;
  /** Largest delay (ms). @default {5000} */
  capMs?: number;
  /** Share of the delay taken off at random, 0 to 1. @default {0} */
  jitter?: number;
  /** Randomness in [0, 1). @default {Math.random} */
  random?: () => number;
}

/**
 * The delay before attempt number `attempt` (0 for the first retry).
 *
 * @example Usage
 * ```ts
 * import { backoffDelay } from "./backoff.ts";
 * console.log([0, 1, 2, 10].map((a) => backoffDelay(a))); // [100, 200, 400, 5000]
 * ```
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const base = options.baseMs ?? 100;
  const cap = options.capMs ?? 5_000;
  const jitter = options.jitter ?? 0;
  const exp = Math.min(cap, base * 2 ** Math.min(attempt, 30));
  return Math.round((1 - jitter * (options.random ?? Math.random)()) * exp);
}
