/**
 * HdrHistogram's percentile-distribution text (what `outputPercentileDistribution`
 * writes and HdrHistogram's plotter reads), parsed back into numbers: the
 * benchmarks chart it, the tests check it.
 *
 * ```text
 *        Value     Percentile TotalCount 1/(1-Percentile)
 *
 *        0.100 0.000000000000          1           1.00
 *        ...
 *       10.007 1.000000000000       1002
 * #[Mean    =        3.610, StdDeviation   =        2.039]
 * #[Max     =       10.001, Total count    =         1002]
 * #[Buckets =           22, SubBuckets     =         2048]
 * ```
 *
 * @module
 */

/** One row: the value at a percentile. */
export interface PercentileRow {
  /** The value, in the unit written (milliseconds for `proxy test --hdr-out`). */
  value: number;
  /** The percentile as a fraction, 0 to 1. */
  percentile: number;
  /** Values recorded up to this one. */
  totalCount: number;
  /** `1/(1-percentile)`; `Infinity` on the last row, which has none. */
  inverse: number;
}

/** A parsed percentile distribution. */
export interface PercentileDistribution {
  /** The rows, in order of percentile. */
  rows: PercentileRow[];
  /** Mean value. */
  mean: number;
  /** Standard deviation. */
  stdDeviation: number;
  /** Largest value recorded (exact; the last row may give the top of its bucket). */
  max: number;
  /** Values recorded. */
  totalCount: number;
  /** The histogram's buckets. */
  buckets: number;
  /** Its sub-buckets per bucket. */
  subBuckets: number;
}

/** The header line. */
export const PERCENTILE_HEADER = /^\s*Value\s+Percentile\s+TotalCount\s+1\/\(1-Percentile\)\s*$/;

const NUMBER = String.raw`(-?\d+(?:\.\d+)?|Infinity)`;
const ROW = new RegExp(String.raw`^\s*${NUMBER}\s+${NUMBER}\s+(\d+)(?:\s+${NUMBER})?\s*$`);
const FOOTERS: [RegExp, [keyof PercentileDistribution, keyof PercentileDistribution]][] = [
  [/^#\[Mean\s*=\s*(\S+),\s*StdDeviation\s*=\s*(\S+)\]$/, ["mean", "stdDeviation"]],
  [/^#\[Max\s*=\s*(\S+),\s*Total count\s*=\s*(\S+)\]$/, ["max", "totalCount"]],
  [/^#\[Buckets\s*=\s*(\S+),\s*SubBuckets\s*=\s*(\S+)\]$/, ["buckets", "subBuckets"]],
];

/**
 * Parses HdrHistogram's percentile-distribution text (the plain form, not
 * CSV).
 *
 * @param text The text, e.g. a `proxy test --hdr-out` file.
 * @returns The rows and the footer's numbers.
 * @throws {SyntaxError} When a line is neither the header, a row, a footer
 * line nor blank, or when the header or a footer line is missing.
 *
 * @example Usage
 * ```ts
 * import { parsePercentileDistribution } from "./percentile_distribution.ts";
 * const d = parsePercentileDistribution([
 *   "       Value     Percentile TotalCount 1/(1-Percentile)",
 *   "",
 *   "       1.000 0.000000000000          1           1.00",
 *   "       2.000 1.000000000000          2",
 *   "#[Mean    =        1.500, StdDeviation   =        0.500]",
 *   "#[Max     =        2.000, Total count    =            2]",
 *   "#[Buckets =           22, SubBuckets     =         2048]",
 * ].join("\n"));
 * console.log(d.rows.length, d.max); // 2 2
 * ```
 */
export function parsePercentileDistribution(text: string): PercentileDistribution {
  const lines = text.split("\n");
  const fail = (i: number, why: string): never => {
    throw new SyntaxError(`Cannot parse percentile distribution: line ${i + 1}: ${why}`);
  };
  if (!PERCENTILE_HEADER.test(lines[0] ?? "")) fail(0, "expected the header line");
  const rows: PercentileRow[] = [];
  const footer: Partial<Record<keyof PercentileDistribution, number>> = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === "") continue;
    const row = ROW.exec(line);
    if (row) {
      if (Object.keys(footer).length > 0) fail(i, "a row after the footer");
      rows.push({
        value: Number(row[1]),
        percentile: Number(row[2]),
        totalCount: Number(row[3]),
        inverse: row[4] === undefined ? Infinity : Number(row[4]),
      });
      continue;
    }
    const found = FOOTERS.find(([re]) => re.test(line));
    if (!found) fail(i, `not a row nor a footer line: ${JSON.stringify(line)}`);
    const [re, [a, b]] = found!;
    const m = re.exec(line)!;
    footer[a] = Number(m[1]);
    footer[b] = Number(m[2]);
  }
  for (const [, keys] of FOOTERS) {
    for (const key of keys) {
      if (!Number.isFinite(footer[key])) fail(lines.length - 1, `missing the footer's ${key}`);
    }
  }
  return {
    rows,
    mean: footer.mean!,
    stdDeviation: footer.stdDeviation!,
    max: footer.max!,
    totalCount: footer.totalCount!,
    buckets: footer.buckets!,
    subBuckets: footer.subBuckets!,
  };
}
