/**
 * The report of `proxy test`: the numbers, the verdict, and their text and
 * JSON forms.
 *
 * @module
 */

import type { LatencyHistogram, LatencySummary } from "./latency_histogram.ts";
import type { LoadResult } from "./load_generator.ts";
import type { MixEntry } from "./request_mix.ts";

/** What was asked of the run, as the report repeats it. */
export interface LoadTestConfig {
  /** The address loaded. */
  target: string;
  /** True when `proxy test` started the proxy itself. */
  selfStarted: boolean;
  /** Workers of the proxy started (null with `--target`). */
  workers: number | null;
  /** The method called. */
  method: string;
  /** Random payload size (null when explicit params were given). */
  payloadBytes: number | null;
  /** Connections. */
  connections: number;
  /** Requests in flight per connection. */
  pipeline: number;
  /** Fixed request rate (open loop), or null for closed loop. */
  rate: number | null;
  /** Warm-up in milliseconds. */
  warmupMs: number;
  /** Chaos interval in milliseconds, or null. */
  chaosMs: number | null;
  /** Error codes the run provokes on purpose (WORKER_EXITED under chaos is added). */
  expectedErrors: string[];
  /** Other requests mixed in (`--mix`). */
  mix?: MixEntry[];
}

/** What the chaos did. */
export interface ChaosOutcome {
  /** Workers killed. */
  crashes: number;
  /** Rounds in which nothing could be killed. */
  skipped: number;
  /** Why the last skipped round skipped. */
  lastError: string | null;
}

/** How the self-started proxy ended. */
export interface ProxyExit {
  /** Exit code. */
  code: number;
  /** True when it had to be SIGKILLed. */
  killed: boolean;
}

/** Extra outcomes of a run. */
export interface ReportExtras {
  /** Present when `--chaos` was given. */
  chaos?: ChaosOutcome;
  /** Present when the proxy was self-started. */
  proxyExit?: ProxyExit;
}

/** The measurements of one method of a mix, in the report. */
export interface MethodReport {
  method: string;
  /** Params of a method of the mix (absent for the main request). */
  params?: unknown[];
  /** Its share of the requests, as asked, in percent. */
  share_pct: number;
  /** Measured requests of this method answered. */
  requests: number;
  /** Of those, answered successfully. */
  succeeded: number;
  /** Their latency in milliseconds. */
  latency_ms: LatencySummary;
}

/** The report; its JSON form is what `proxy test --json` prints. */
export interface LoadReport {
  target: string;
  self_started: boolean;
  workers: number | null;
  method: string;
  payload_bytes: number | null;
  connections: number;
  pipeline: number;
  rate: number | null;
  /** Open loop: requests sent per second of measured time, to compare with `rate`; else null. */
  rate_achieved: number | null;
  /**
   * Open loop: true when fewer than {@linkcode RATE_TOLERANCE} of the
   * requests due were sent (the run then fails: its latencies are those of a
   * lighter load than asked).
   */
  rate_fell_short: boolean;
  /**
   * When the rate fell short, which side held it back: `target` when
   * connections mostly waited with `pipeline` requests unanswered, else
   * `generator` (this process could not send fast enough); null otherwise.
   */
  rate_bottleneck: "target" | "generator" | null;
  warmup_s: number;
  /** Seconds of measured load. */
  duration_s: number;
  /** Measured requests answered (successfully or with an error). */
  requests: number;
  /** `requests / duration_s`. */
  rps: number;
  /** Measured requests answered successfully and correctly. */
  succeeded: number;
  /** Requests sent in all, warm-up included. */
  sent: number;
  /** Error and wrong answers by code (warm-up included). */
  errors: Record<string, number>;
  /** Requests never answered. */
  unanswered: number;
  /** Connections the server closed during the run. */
  connection_drops: number;
  /** Latency of the measured answers, in milliseconds. */
  latency_ms: LatencySummary;
  /** With `--mix`: the main request first, then each method mixed in. */
  by_method?: MethodReport[];
  /** Workers killed by `--chaos`. */
  crashes?: number;
  /** Requests answered `WORKER_EXITED` (with `--chaos`). */
  worker_exited?: number;
  /** Codes not counted as failures. */
  expected_errors: string[];
  /** Exit code of the self-started proxy. */
  proxy_exit_code?: number;
  /** True when stopped early (Ctrl-C). */
  aborted: boolean;
  /** True when nothing failed. */
  passed: boolean;
  /** What failed, one line each. */
  failures: string[];
}

/** The code the proxy answers for requests lost with their worker. */
export const WORKER_EXITED = "WORKER_EXITED";

/**
 * The share of the requests due under `--rate` that must have been sent
 * for the run to pass; the last timer tick may miss a few.
 */
export const RATE_TOLERANCE = 0.95;

/** What became of the asked rate: null in closed loop. */
interface RateOutcome {
  achieved: number;
  fellShort: boolean;
  bottleneck: "target" | "generator" | null;
}

function rateOutcome(
  rate: number | null,
  result: Pick<LoadResult, "measuredSent" | "heldShare" | "durationMs">,
): RateOutcome | null {
  if (rate === null) return null;
  const durationS = result.durationMs / 1000;
  const achieved = durationS > 0 ? result.measuredSent / durationS : 0;
  // One request of slack: a short run at a low rate has few due.
  const fellShort = durationS > 0 && result.measuredSent + 1 < RATE_TOLERANCE * rate * durationS;
  return {
    achieved,
    fellShort,
    bottleneck: fellShort ? (result.heldShare >= 0.5 ? "target" : "generator") : null,
  };
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/**
 * The error codes not held against the run: those given, plus
 * `WORKER_EXITED` when workers are killed on purpose.
 */
export function expectedCodes(
  config: Pick<LoadTestConfig, "expectedErrors" | "chaosMs">,
): string[] {
  const codes = new Set(config.expectedErrors);
  if (config.chaosMs !== null) codes.add(WORKER_EXITED);
  return [...codes].sort();
}

/**
 * Builds the report of a run and its verdict: it passes only when every
 * request was answered, no error other than the expected ones occurred, no
 * connection dropped, at least one request was answered, under `rate` at
 * least {@linkcode RATE_TOLERANCE} of the requests due were sent, and (when
 * asked) the chaos killed at least one worker and the self-started proxy
 * stopped cleanly.
 *
 * @param config What was asked.
 * @param result What the load generator measured.
 * @param extras Chaos and proxy outcomes.
 * @returns The report.
 *
 * @example Usage
 * ```ts
 * import { buildReport } from "./report.ts";
 * import { LatencyHistogram } from "./latency_histogram.ts";
 * const report = buildReport({
 *   target: "127.0.0.1:8080", selfStarted: false, workers: null, method: "echo", payloadBytes: 64,
 *   connections: 1, pipeline: 1, rate: null, warmupMs: 0, chaosMs: null, expectedErrors: [],
 * }, {
 *   requests: 100, succeeded: 100, sent: 100, measuredSent: 100, heldShare: 0, errors: {},
 *   unanswered: 0, connectionDrops: 0, durationMs: 1000, histogram: new LatencyHistogram(),
 *   aborted: false,
 * });
 * console.log(report.rps, report.passed); // 100 true
 * ```
 */
export function buildReport(
  config: LoadTestConfig,
  result: LoadResult,
  extras: ReportExtras = {},
): LoadReport {
  const expected = expectedCodes(config);
  const durationS = result.durationMs / 1000;
  const rate = rateOutcome(config.rate, result);
  const failures: string[] = [];
  if (result.requests === 0) failures.push("no request was answered");
  if (result.unanswered > 0) {
    failures.push(`${plural(result.unanswered, "request")} never answered`);
  }
  const unexpected = Object.entries(result.errors)
    .filter(([code, n]) => n > 0 && !expected.includes(code))
    .sort(([a], [b]) => a.localeCompare(b));
  if (unexpected.length > 0) {
    const total = unexpected.reduce((sum, [, n]) => sum + n, 0);
    failures.push(
      `${plural(total, "unexpected error")}: ${
        unexpected.map(([code, n]) => `${code} ${n}`).join(", ")
      }`,
    );
  }
  if (result.connectionDrops > 0) {
    failures.push(`${plural(result.connectionDrops, "connection")} closed by the server`);
  }
  if (extras.chaos && extras.chaos.crashes === 0) {
    failures.push(
      `--chaos killed no worker${extras.chaos.lastError ? ` (${extras.chaos.lastError})` : ""}`,
    );
  }
  if (rate?.fellShort) {
    failures.push(
      `the rate fell short: asked ${fmt(config.rate ?? 0)}/s, achieved ${fmt(rate.achieved)}/s`,
    );
  }
  if (extras.proxyExit) {
    if (extras.proxyExit.killed) {
      failures.push("the proxy did not stop on SIGTERM in time and was killed");
    } else if (extras.proxyExit.code !== 0) {
      failures.push(`the proxy exited with code ${extras.proxyExit.code}`);
    }
  }
  const report: LoadReport = {
    target: config.target,
    self_started: config.selfStarted,
    workers: config.workers,
    method: config.method,
    payload_bytes: config.payloadBytes,
    connections: config.connections,
    pipeline: config.pipeline,
    rate: config.rate,
    rate_achieved: rate ? round(rate.achieved, 1) : null,
    rate_fell_short: rate?.fellShort ?? false,
    rate_bottleneck: rate?.bottleneck ?? null,
    warmup_s: round(config.warmupMs / 1000, 3),
    duration_s: round(durationS, 3),
    requests: result.requests,
    rps: durationS > 0 ? round(result.requests / durationS, 1) : 0,
    succeeded: result.succeeded,
    sent: result.sent,
    errors: Object.fromEntries(
      Object.entries(result.errors).sort(([a], [b]) => a.localeCompare(b)),
    ),
    unanswered: result.unanswered,
    connection_drops: result.connectionDrops,
    latency_ms: roundedLatency(result.histogram),
    expected_errors: expected,
    aborted: result.aborted,
    passed: failures.length === 0,
    failures,
  };
  if (extras.chaos) {
    report.crashes = extras.chaos.crashes;
    report.worker_exited = result.errors[WORKER_EXITED] ?? 0;
  }
  if (extras.proxyExit) report.proxy_exit_code = extras.proxyExit.code;
  if (result.byMethod) {
    report.by_method = result.byMethod.map((m) => ({
      method: m.method,
      ...(m.params ? { params: m.params } : {}),
      share_pct: round(m.share * 100, 3),
      requests: m.requests,
      succeeded: m.succeeded,
      latency_ms: roundedLatency(m.histogram),
    }));
  }
  return report;
}

function roundedLatency(histogram: LatencyHistogram): LatencySummary {
  const l = histogram.summary();
  return {
    p50: round(l.p50, 3),
    p90: round(l.p90, 3),
    p99: round(l.p99, 3),
    p999: round(l.p999, 3),
    max: round(l.max, 3),
    mean: round(l.mean, 3),
  };
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

function ms(n: number): string {
  return n >= 100 ? fmt(n, 1) : n.toFixed(3);
}

function rateLine(report: LoadReport, asked: number, achieved: number): string {
  const line = `asked ${fmt(asked)}/s, achieved ${fmt(achieved)}/s`;
  if (report.rate_bottleneck === null) return line;
  const why = report.rate_bottleneck === "target"
    ? `its connections mostly waited, full with ${report.pipeline} unanswered each: the ` +
      `target answers too slowly for this rate with ${report.connections} x ${report.pipeline} ` +
      "in flight"
    : "its connections had room: this process could not send fast enough";
  return `${line}: the generator could not keep up (${why})`;
}

/**
 * The report as text for a person, one fact per line.
 *
 * @param report A report from {@linkcode buildReport}.
 * @returns Lines ending with a newline.
 */
export function formatReport(report: LoadReport): string {
  const lines: string[] = [];
  const add = (label: string, text: string) => lines.push(`${label.padEnd(12)}${text}`);
  add(
    "Target",
    `${report.target}${
      report.self_started
        ? ` (proxy started for the test, ${plural(report.workers ?? 0, "worker")})`
        : ""
    }`,
  );
  const what = report.payload_bytes === null
    ? report.method
    : `${report.method} with ${fmt(report.payload_bytes)} B payloads`;
  const shape = `${plural(report.connections, "connection")} x ${report.pipeline} in flight`;
  const pace = report.rate === null
    ? "as fast as answered"
    : `${fmt(report.rate)} requests/s (open loop)`;
  const mixed = (report.by_method ?? []).slice(1).map((m) =>
    `${m.method}(${JSON.stringify(m.params ?? []).slice(1, -1)}) ${fmt(m.share_pct, 1)}%`
  );
  add(
    "Load",
    `${what}${mixed.length > 0 ? `, mixed with ${mixed.join(", ")}` : ""}; ${shape}; ${pace}`,
  );
  add(
    "Duration",
    `${fmt(report.duration_s, 2)} s${
      report.warmup_s > 0 ? ` after ${fmt(report.warmup_s, 2)} s of warm-up` : ""
    }${report.aborted ? " (stopped early)" : ""}`,
  );
  if (report.rate !== null && report.rate_achieved !== null) {
    add("Rate", rateLine(report, report.rate, report.rate_achieved));
  }
  add("Requests", `${fmt(report.requests)} (${fmt(report.rps, 1)}/s)`);
  const latencyText = (l: LatencySummary) =>
    `p50 ${ms(l.p50)}  p90 ${ms(l.p90)}  p99 ${ms(l.p99)}  p99.9 ${ms(l.p999)}  max ${ms(l.max)}`;
  add("Latency ms", latencyText(report.latency_ms));
  for (const m of report.by_method ?? []) {
    add(
      "",
      `${m.method} (${fmt(m.share_pct, 1)}%, ${fmt(m.requests)}): ${latencyText(m.latency_ms)}`,
    );
  }
  const errors = Object.entries(report.errors);
  add(
    "Errors",
    errors.length === 0
      ? "none"
      : errors.map(([code, n]) =>
        `${code} ${fmt(n)}${report.expected_errors.includes(code) ? " (expected)" : ""}`
      ).join(", "),
  );
  add("Unanswered", fmt(report.unanswered));
  if (report.connection_drops > 0) add("Dropped", plural(report.connection_drops, "connection"));
  if (report.crashes !== undefined) {
    add(
      "Chaos",
      `${plural(report.crashes, "worker")} killed; ${
        plural(report.worker_exited ?? 0, "request")
      } answered WORKER_EXITED`,
    );
  }
  add("Result", report.passed ? "PASS" : `FAIL: ${report.failures.join("; ")}`);
  return lines.join("\n") + "\n";
}
