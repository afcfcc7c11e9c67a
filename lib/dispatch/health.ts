/**
 * The health of an upstream, as active checks and passive observation see
 * it, kept apart from the code that talks to it so the rules are tested with
 * a fake clock:
 *
 * - {@linkcode HealthCheckState}: `rise` checks in a row make an unhealthy
 *   host healthy again, `fall` make a healthy one unhealthy (HAProxy's and
 *   Envoy's rule);
 * - {@linkcode OutlierState}: `consecutive` transport failures (connection
 *   lost with requests on it, timeouts) eject a host for a base time that
 *   grows with each ejection (Envoy's outlier detection);
 * - {@linkcode ejectionAllowed} and {@linkcode panicRouting}: at most a
 *   share of a set ejected, and when too few are healthy, route to all
 *   rather than to none.
 *
 * @module
 */

/** Active check results turned into healthy / unhealthy, with hysteresis. */
export class HealthCheckState {
  readonly #rise: number;
  readonly #fall: number;
  #healthy = true;
  #streak = 0; // results in a row against the current state

  /**
   * @param rise Passing checks in a row that make an unhealthy host healthy.
   * @param fall Failing checks in a row that make a healthy host unhealthy.
   */
  constructor(rise: number, fall: number) {
    this.#rise = rise;
    this.#fall = fall;
  }

  /** The current verdict. */
  get healthy(): boolean {
    return this.#healthy;
  }

  /** Records a check; true when the verdict changed. */
  record(passed: boolean): boolean {
    if (passed === this.#healthy) {
      this.#streak = 0;
      return false;
    }
    this.#streak++;
    if (this.#streak < (this.#healthy ? this.#fall : this.#rise)) return false;
    this.#healthy = passed;
    this.#streak = 0;
    return true;
  }
}

/** Passive outlier detection for one host. */
export class OutlierState {
  readonly #consecutive: number;
  #failures = 0;
  #ejections = 0;
  #ejectedUntil = 0;

  /** @param consecutive Transport failures in a row that make an outlier. */
  constructor(consecutive: number) {
    this.#consecutive = consecutive;
  }

  /** Times ejected so far. */
  get ejections(): number {
    return this.#ejections;
  }

  /** True while ejected at `now`. */
  ejected(now: number): boolean {
    return this.#ejectedUntil > now;
  }

  /** A request answered: the run of failures ends. */
  recordSuccess(): void {
    this.#failures = 0;
  }

  /** A transport failure; true when the host is now an outlier (not yet ejected). */
  recordFailure(): boolean {
    this.#failures++;
    return this.#failures >= this.#consecutive;
  }

  /**
   * Ejects the host until `now + baseMs x ejections` (capped at `maxMs`):
   * a host that keeps failing stays out longer each time.
   */
  eject(now: number, baseMs: number, maxMs: number): number {
    this.#ejections++;
    this.#failures = 0;
    const ms = Math.min(maxMs, baseMs * this.#ejections);
    this.#ejectedUntil = now + ms;
    return ms;
  }

  /** Ends an ejection early (the host recovered, or is needed). */
  release(): void {
    this.#ejectedUntil = 0;
  }
}

/**
 * True when one more host of `total` may be ejected while `ejected` are,
 * keeping at most `maxPercent` % out (at least one may always go, as Envoy
 * allows).
 *
 * @example Usage
 * ```ts
 * import { ejectionAllowed } from "./health.ts";
 * console.log(ejectionAllowed(1, 4, 50), ejectionAllowed(2, 4, 50)); // true false
 * ```
 */
export function ejectionAllowed(ejected: number, total: number, maxPercent: number): boolean {
  if (ejected === 0) return true;
  return ((ejected + 1) * 100) / total <= maxPercent;
}

/**
 * True when too few hosts are healthy (below `thresholdPercent` % of
 * `total`): then requests go to every host, healthy or not, since sending
 * them nowhere helps no one (Envoy's panic threshold).
 *
 * @example Usage
 * ```ts
 * import { panicRouting } from "./health.ts";
 * console.log(panicRouting(1, 4, 50), panicRouting(2, 4, 50)); // true false
 * ```
 */
export function panicRouting(healthy: number, total: number, thresholdPercent: number): boolean {
  return total > 0 && (healthy * 100) / total < thresholdPercent;
}
