/**
 * A handler module for the benchmark's CPU-bound cells: `spin(us)` keeps the
 * worker busy for `us` microseconds, as a request that does real work would.
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
