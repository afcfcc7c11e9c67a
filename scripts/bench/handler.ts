/**
 * A handler module for the benchmark's slow requests: `spin(us)` keeps the
 * worker's CPU busy for `us` microseconds, as a request that does real work
 * would; `block(us)` holds the worker as long without using the CPU, as a
 * synchronous call to a slow vendor API or database would.
 *
 * @module
 */

/**
 * Busy-waits `us` microseconds (at most one second) and returns `us`.
 *
 * @param us Microseconds of CPU to burn.
 * @returns `us`.
 */
export function spin(us: unknown): number {
  const n = typeof us === "number" && us > 0 ? Math.min(us, 1_000_000) : 0;
  const end = performance.now() + n / 1000;
  while (performance.now() < end) {
    // burn
  }
  return n;
}

const blocker = new Int32Array(new SharedArrayBuffer(4));

/**
 * Blocks the worker's thread `us` microseconds (at most one second) without
 * using the CPU, and returns `us`.
 *
 * @param us Microseconds to block.
 * @returns `us`.
 */
export function block(us: unknown): number {
  const n = typeof us === "number" && us > 0 ? Math.min(us, 1_000_000) : 0;
  Atomics.wait(blocker, 0, 0, n / 1000);
  return n;
}
