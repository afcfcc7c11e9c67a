/**
 * Latency recording in an HDR histogram (hdr-histogram-js, plain JS mode):
 * values in microseconds, 3 significant digits, reported in milliseconds.
 *
 * @module
 */

import * as hdr from "hdr-histogram-js";

/** Latency percentiles in milliseconds. */
export interface LatencySummary {
  /** Median. */
  p50: number;
  /** 90th percentile. */
  p90: number;
  /** 99th percentile. */
  p99: number;
  /** 99.9th percentile. */
  p999: number;
  /** Largest value recorded. */
  max: number;
  /** Arithmetic mean. */
  mean: number;
}

/** Options of {@linkcode LatencyHistogram}. */
export interface LatencyHistogramOptions {
  /**
   * Largest latency tracked, in milliseconds; larger values are recorded as
   * this.
   * @default {3600000}
   */
  highestMs?: number;
}

/**
 * An HDR histogram of latencies with microsecond resolution.
 *
 * @example Usage
 * ```ts
 * import { LatencyHistogram } from "./latency_histogram.ts";
 * const h = new LatencyHistogram();
 * for (let ms = 1; ms <= 100; ms++) h.record(ms);
 * console.log(h.summary().p50); // 50
 * ```
 */
export class LatencyHistogram {
  readonly #histogram: hdr.Histogram;
  readonly #highestMicros: number;

  /** @param options The largest value tracked. */
  constructor(options: LatencyHistogramOptions = {}) {
    const highestMs = options.highestMs ?? 3_600_000;
    if (!(highestMs >= 1)) {
      throw new RangeError(
        `Cannot create histogram: highestMs must be at least 1, got ${highestMs}`,
      );
    }
    this.#highestMicros = Math.round(highestMs * 1000);
    this.#histogram = hdr.build({
      lowestDiscernibleValue: 1,
      highestTrackableValue: this.#highestMicros,
      numberOfSignificantValueDigits: 3,
      bitBucketSize: 32,
      useWebAssembly: false,
    });
  }

  /** Values recorded. */
  get count(): number {
    return this.#histogram.totalCount;
  }

  /** Records one latency given in milliseconds (fractions kept to the microsecond). */
  record(ms: number): void {
    let us = Math.round(ms * 1000);
    if (!(us >= 0)) us = 0;
    else if (us > this.#highestMicros) us = this.#highestMicros;
    this.#histogram.recordValue(us);
  }

  /** Adds every value recorded in `other`. */
  add(other: LatencyHistogram): void {
    this.#histogram.add(other.#histogram);
  }

  /**
   * The latency at `percentile` (0 to 100), in milliseconds, never above
   * the largest value recorded.
   *
   * @throws {RangeError} When `percentile` is out of range.
   */
  percentile(percentile: number): number {
    if (!(percentile >= 0 && percentile <= 100)) {
      throw new RangeError(`Cannot read percentile: expected 0 to 100, got ${percentile}`);
    }
    return this.#valueAt(percentile) / 1000;
  }

  /** Percentiles, max and mean in milliseconds; all 0 when empty. No percentile exceeds max. */
  summary(): LatencySummary {
    const h = this.#histogram;
    if (h.totalCount === 0) return { p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 };
    return {
      p50: this.#valueAt(50) / 1000,
      p90: this.#valueAt(90) / 1000,
      p99: this.#valueAt(99) / 1000,
      p999: this.#valueAt(99.9) / 1000,
      max: h.maxValue / 1000,
      mean: h.mean / 1000,
    };
  }

  /**
   * HdrHistogram's standard percentile-distribution text, values in
   * milliseconds: the header, one row per percentile step (value,
   * percentile, total count, 1/(1-percentile)), then the `#[Mean ...`,
   * `#[Max ...` and `#[Buckets ...` footer lines. HdrHistogram's plotter
   * reads it. As HdrHistogram writes it, a row's value is the top of its
   * bucket, so the last rows may exceed the footer's exact max by up to 0.1 %.
   *
   * @param ticksPerHalfDistance Rows per halving of the distance to 100 %.
   * @default {5}
   * @returns The text, ending with a newline.
   */
  percentileDistribution(ticksPerHalfDistance = 5): string {
    return this.#histogram.outputPercentileDistribution(ticksPerHalfDistance, 1000);
  }

  // HDR answers the top of the value's bucket (up to 0.1 % above what was
  // recorded) while max is exact: clamp, so p99.9 never reads above max.
  #valueAt(percentile: number): number {
    const h = this.#histogram;
    return Math.min(h.getValueAtPercentile(percentile), h.maxValue);
  }
}
