/**
 * Per-request metrics: requests by method and outcome, and latency as the
 * proxy sees it (from the request read to its answer queued), recorded as a
 * {@linkcode RequestObserver} of the dispatcher.
 *
 * @module
 */

import type { Call } from "../dispatch/call.ts";
import type { Host } from "../dispatch/host.ts";
import type { RequestObserver } from "../dispatch/observer.ts";
import { Histogram } from "./prometheus.ts";

/** The `code` label of a result. */
export const OK = "OK";
/**
 * The `code` label of an error answered by a worker or upstream: the proxy
 * forwards its error without decoding it, so it is not split by code.
 */
export const HOST_ERROR = "ERROR";
/** The `method` label of methods beyond the first `maxMethods`. */
export const OTHER_METHOD = "other";

// Method names longer than this are counted as `other`: a label is not a
// place for a client's megabyte.
const MAX_METHOD_LABEL = 100;

/** The series of one method label. */
export interface MethodSeries {
  /** Requests answered, by code. */
  readonly codes: Map<string, number>;
  /** Seconds from the request read to its answer. */
  readonly latency: Histogram;
}

/** Options of {@linkcode RequestMetrics}. */
export interface RequestMetricsOptions {
  /**
   * Methods that get a label of their own; the rest are `other`. The first
   * ones seen get them, and keep them, so every counter only grows.
   * @default {20}
   */
  maxMethods?: number;
}

/** Counts and times every request it is told of. */
export class RequestMetrics implements RequestObserver {
  readonly #maxMethods: number;
  readonly #methods = new Map<string, MethodSeries>();
  readonly #other: MethodSeries = { codes: new Map(), latency: new Histogram() };
  /** Seconds from the request read to its leaving for a host (0 when none was busy). */
  readonly queueWait: Histogram = new Histogram();

  /** @param options How many methods get a label. */
  constructor(options: RequestMetricsOptions = {}) {
    this.#maxMethods = options.maxMethods ?? 20;
  }

  /** The series, by method label (`other` last). */
  *methods(): Iterable<[string, MethodSeries]> {
    yield* this.#methods;
    yield [OTHER_METHOD, this.#other];
  }

  #series(method: string): MethodSeries {
    const known = this.#methods.get(method);
    if (known !== undefined) return known;
    if (
      this.#methods.size >= this.#maxMethods || method.length > MAX_METHOD_LABEL ||
      method === OTHER_METHOD
    ) {
      return this.#other;
    }
    const series: MethodSeries = { codes: new Map(), latency: new Histogram() };
    this.#methods.set(method, series);
    return series;
  }

  /** Records `method` answered with `code` after `seconds` (also for answers the proxy made itself). */
  record(method: string, code: string, seconds: number): void {
    const s = this.#series(method);
    s.codes.set(code, (s.codes.get(code) ?? 0) + 1);
    if (seconds >= 0) s.latency.observe(seconds);
  }

  /** A host answered. */
  answered(call: Call, _host: Host, now: number): void {
    this.record(call.method, call.errored ? HOST_ERROR : OK, (now - call.arrivedAt) / 1000);
    if (call.sentAt > 0) this.queueWait.observe((call.sentAt - call.arrivedAt) / 1000);
  }

  /** The proxy answered with an error of its own. */
  failed(call: Call, code: string, _host: Host | null, now: number): void {
    this.record(call.method, code, call.arrivedAt > 0 ? (now - call.arrivedAt) / 1000 : -1);
  }
}
