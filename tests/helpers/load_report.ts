/**
 * A `proxy test` report made up for the bench's pure parts.
 *
 * @module
 */

import type { LoadReport } from "../../lib/loadtest/report.ts";

/** A passing 3 s report of `rps` requests/s with the given p50 and p99 (ms). */
export function fakeReport(
  rps: number,
  p50: number,
  p99: number,
  over: Partial<LoadReport> = {},
): LoadReport {
  return {
    target: "127.0.0.1:1",
    self_started: false,
    workers: null,
    method: "echo",
    payload_bytes: 64,
    connections: 16,
    pipeline: 1,
    rate: null,
    rate_achieved: null,
    rate_fell_short: false,
    rate_bottleneck: null,
    warmup_s: 0.5,
    duration_s: 3,
    requests: rps * 3,
    rps,
    succeeded: rps * 3,
    sent: rps * 3,
    errors: {},
    unanswered: 0,
    connection_drops: 0,
    latency_ms: { p50, p90: p99, p99, p999: p99, max: p99, mean: p50 },
    expected_errors: [],
    aborted: false,
    passed: true,
    failures: [],
    ...over,
  };
}
