/**
 * Watching requests end, for metrics and the access log. The dispatcher
 * calls an observer only when one is set: without one, no clock is read and
 * nothing is recorded per request.
 *
 * @module
 */

import type { Call } from "./call.ts";
import type { Host } from "./host.ts";

/** Told of every request the dispatcher answers (notifications are not). */
export interface RequestObserver {
  /**
   * A host answered `call` (`call.errored` tells whether with an error).
   * `call.arrivedAt` and `call.sentAt` are set; `now` is the same clock.
   */
  answered(call: Call, host: Host, now: number): void;
  /**
   * The proxy answered `call` with an error of its own (`code`), e.g.
   * `QUEUE_FULL` or `TIMEOUT`; `host` is the one it was at, if any.
   */
  failed(call: Call, code: string, host: Host | null, now: number): void;
}

/** One observer that tells each of `observers` in turn. */
export function combineObservers(observers: readonly RequestObserver[]): RequestObserver | null {
  if (observers.length === 0) return null;
  if (observers.length === 1) return observers[0]!;
  return {
    answered(call, host, now) {
      for (const o of observers) o.answered(call, host, now);
    },
    failed(call, code, host, now) {
      for (const o of observers) o.failed(call, code, host, now);
    },
  };
}
