/**
 * The Prometheus text exposition format (version 0.0.4): a writer of metric
 * families, and a histogram with fixed buckets cheap enough to record into
 * per request.
 *
 * @module
 */

/** The `Content-Type` of the text format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Label names and values of one sample. */
export type Labels = Readonly<Record<string, string>>;

/** The kinds of metric family. */
export type MetricType = "counter" | "gauge" | "histogram";

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatLabels(labels: Labels | undefined, extra?: [string, string]): string {
  const parts: string[] = [];
  if (labels) {
    for (const [k, v] of Object.entries(labels)) {
      parts.push(`${k}="${escapeLabel(v)}"`);
    }
  }
  if (extra) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

/** A number as the format writes it (`+Inf`, `NaN`, integers without a point). */
export function formatValue(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n);
}

/**
 * Builds one exposition: each family once, with its `# HELP` and `# TYPE`,
 * then its samples.
 *
 * @example Usage
 * ```ts
 * import { ExpositionWriter } from "./prometheus.ts";
 * const w = new ExpositionWriter();
 * w.family("proxy_connections_open", "gauge", "Client connections open.");
 * w.sample("proxy_connections_open", 3);
 * console.log(w.text());
 * // # HELP proxy_connections_open Client connections open.
 * // # TYPE proxy_connections_open gauge
 * // proxy_connections_open 3
 * ```
 */
export class ExpositionWriter {
  readonly #lines: string[] = [];
  readonly #families = new Set<string>();

  /**
   * Starts a family.
   *
   * @throws {Error} When the family was started already (a family must be contiguous).
   */
  family(name: string, type: MetricType, help: string): this {
    if (this.#families.has(name)) throw new Error(`Metric family ${name} written twice`);
    this.#families.add(name);
    this.#lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    return this;
  }

  /** One sample of the current family (`name` may carry a suffix such as `_bucket`). */
  sample(name: string, value: number, labels?: Labels): this {
    this.#lines.push(`${name}${formatLabels(labels)} ${formatValue(value)}`);
    return this;
  }

  /** A whole family of one sample per label set. */
  series(
    name: string,
    type: "counter" | "gauge",
    help: string,
    samples: Iterable<[Labels | undefined, number]>,
  ): this {
    this.family(name, type, help);
    for (const [labels, value] of samples) this.sample(name, value, labels);
    return this;
  }

  /** A whole family of one sample without labels. */
  single(name: string, type: "counter" | "gauge", help: string, value: number): this {
    return this.family(name, type, help).sample(name, value);
  }

  /** A histogram family: every label set's buckets, sum and count. */
  histogram(
    name: string,
    help: string,
    histograms: Iterable<[Labels | undefined, Histogram]>,
  ): this {
    this.family(name, "histogram", help);
    for (const [labels, h] of histograms) {
      let cumulative = 0;
      for (let i = 0; i < h.bounds.length; i++) {
        cumulative += h.counts[i]!;
        this.#lines.push(
          `${name}_bucket${formatLabels(labels, ["le", formatValue(h.bounds[i]!)])} ${cumulative}`,
        );
      }
      this.#lines.push(`${name}_bucket${formatLabels(labels, ["le", "+Inf"])} ${h.count}`);
      this.#lines.push(`${name}_sum${formatLabels(labels)} ${formatValue(h.sum)}`);
      this.#lines.push(`${name}_count${formatLabels(labels)} ${h.count}`);
    }
    return this;
  }

  /** The exposition, ending with a newline. */
  text(): string {
    return this.#lines.join("\n") + "\n";
  }
}

/**
 * Latency buckets in seconds, from 100 µs (a loopback round trip) to a
 * minute (beyond any sane request timeout).
 */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
];

/** Observations counted into fixed buckets (upper bounds, inclusive). */
export class Histogram {
  /** Upper bounds, ascending. */
  readonly bounds: readonly number[];
  /** Observations per bucket (not cumulative); the last one counts those above every bound. */
  readonly counts: Float64Array;
  /** Sum of the observations. */
  sum = 0;
  /** Number of observations. */
  count = 0;

  /** @param bounds Upper bounds, ascending. @default {LATENCY_BUCKETS} */
  constructor(bounds: readonly number[] = LATENCY_BUCKETS) {
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Records one observation. */
  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    // Most requests are fast: a scan from the bottom ends within a few steps.
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}
