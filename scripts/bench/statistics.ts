/**
 * The numbers the report gives: medians over a cell's runs, ratios, and the
 * latency-by-percentile curves of the charts. Pure.
 *
 * @module
 */

import type { PercentileDistribution } from "../../lib/loadtest/percentile_distribution.ts";
import type { CellRun } from "./cell.ts";
import type { CpuUse } from "./cpu_sample.ts";
import { sameShape, type Scenario, type Shape } from "./plan.ts";

/**
 * The median: the middle value, or the mean of the two middle ones.
 *
 * @throws {RangeError} When `values` is empty.
 *
 * @example Usage
 * ```ts
 * import { median } from "./statistics.ts";
 * console.log(median([3, 1, 2]), median([4, 1, 3, 2])); // 2 2.5
 * ```
 */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("Cannot take the median: no values");
  const v = [...values].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/**
 * `a / b`, or null when either is missing or zero (a ratio of nothing is
 * not 0x, it is unknown).
 */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (!a || !b) return null;
  return a / b;
}

/** A cell's runs, summarised: medians of the runs that produced a report. */
export interface CellSummary {
  /** Runs that produced a report. */
  runs: number;
  /** Median requests/s. */
  rps: number;
  /** Lowest requests/s of the runs. */
  rpsMin: number;
  /** Highest requests/s of the runs. */
  rpsMax: number;
  /** Median of the runs' p50 latency, ms. */
  p50: number;
  /** Median of the runs' p99 latency, ms. */
  p99: number;
  /** With a mix: median p99 of each method, ms. */
  p99ByMethod: Record<string, number>;
  /** Mean CPU per request over the runs that were sampled, or null. */
  cpu: CpuUse | null;
  /** `none`, the failures (`; `-separated), or the error counts as JSON. */
  errors: string;
}

/**
 * Summarises a cell's runs.
 *
 * @returns Null when no run produced a report.
 */
export function summarizeRuns(runs: readonly CellRun[]): CellSummary | null {
  const reports = runs.flatMap((r) => r.report ? [r.report] : []);
  if (reports.length === 0) return null;
  const cpus = runs.flatMap((r) => r.cpu ? [r.cpu] : []);
  const mean = (f: (c: CpuUse) => number) => cpus.reduce((t, c) => t + f(c), 0) / cpus.length;
  const failures = [...new Set(runs.flatMap((r) => r.error ? [r.error] : []))];
  const errors: Record<string, number> = {};
  for (const r of reports) {
    for (const [code, n] of Object.entries(r.errors)) errors[code] = (errors[code] ?? 0) + n;
  }
  const byMethod: Record<string, number[]> = {};
  for (const r of reports) {
    for (const m of r.by_method ?? []) (byMethod[m.method] ??= []).push(m.latency_ms.p99);
  }
  return {
    runs: reports.length,
    rps: median(reports.map((r) => r.rps)),
    rpsMin: Math.min(...reports.map((r) => r.rps)),
    rpsMax: Math.max(...reports.map((r) => r.rps)),
    p50: median(reports.map((r) => r.latency_ms.p50)),
    p99: median(reports.map((r) => r.latency_ms.p99)),
    p99ByMethod: Object.fromEntries(
      Object.entries(byMethod).map(([method, p99s]) => [method, median(p99s)]),
    ),
    cpu: cpus.length === 0 ? null : {
      front: mean((c) => c.front),
      frontSys: mean((c) => c.frontSys),
      workers: mean((c) => c.workers),
      rest: mean((c) => c.rest),
      busyCores: mean((c) => c.busyCores),
    },
    errors: failures.length > 0
      ? failures.join("; ")
      : Object.keys(errors).length > 0
      ? JSON.stringify(errors)
      : "none",
  };
}

/** The runs of one cell. */
export function cellRuns(
  runs: readonly CellRun[],
  scenario: Scenario,
  shape: Shape,
  target: string,
): CellRun[] {
  return runs.filter((r) =>
    r.scenario === scenario && sameShape(r.shape, shape) && r.target === target
  );
}

/**
 * The value at percentile `p` (a fraction) of a distribution: that of the
 * first row at or above `p`, never above the exact max.
 */
export function valueAtPercentile(d: PercentileDistribution, p: number): number {
  const row = d.rows.find((r) => r.percentile >= p);
  return Math.min(row?.value ?? d.max, d.max);
}

/** A point of a latency-by-percentile curve. */
export interface CurvePoint {
  /** The percentile, a fraction below 1. */
  percentile: number;
  /** `1/(1-percentile)`: the x axis of the charts (log scale). */
  inverse: number;
  /** Latency in ms. */
  latency: number;
}

/**
 * A cell's latency by percentile: at each percentile step of the runs'
 * distributions, the median over the runs. Steps go only as deep as every
 * run has values for (1/(1-p) at most the smallest count): beyond, a
 * percentile is only the max.
 *
 * @returns The points by rising percentile; empty without distributions.
 */
export function latencyCurve(distributions: readonly PercentileDistribution[]): CurvePoint[] {
  const ds = distributions.filter((d) => d.totalCount > 0);
  if (ds.length === 0) return [];
  const deepest = Math.min(...ds.map((d) => d.totalCount));
  const levels = [
    ...new Set(ds.flatMap((d) => d.rows.map((r) => r.percentile))),
  ].filter((p) => p < 1 && 1 / (1 - p) <= deepest).sort((a, b) => a - b);
  return levels.map((p) => ({
    percentile: p,
    inverse: 1 / (1 - p),
    latency: median(ds.map((d) => valueAtPercentile(d, p))),
  }));
}
