/**
 * Unit tests of the benchmark's statistics: medians, cell summaries,
 * ratios, latency curves, and the shapes of the plan.
 */

import assert from "node:assert/strict";
import type { LoadReport } from "../lib/loadtest/report.ts";
import { fakeReport } from "./helpers/load_report.ts";
import { LatencyHistogram } from "../lib/loadtest/latency_histogram.ts";
import { parsePercentileDistribution } from "../lib/loadtest/percentile_distribution.ts";
import type { CellRun } from "../scripts/bench/cell.ts";
import { parseShapes, rotate } from "../scripts/bench/plan.ts";
import {
  cellRuns,
  latencyCurve,
  median,
  ratio,
  summarizeRuns,
  valueAtPercentile,
} from "../scripts/bench/statistics.ts";
import { cpuUse, parseCpuSample } from "../scripts/bench/cpu_sample.ts";

function run(report: LoadReport | null, over: Partial<CellRun> = {}): CellRun {
  return {
    scenario: "echo",
    shape: { connections: 16, pipeline: 1 },
    target: "ours",
    report,
    error: null,
    cpu: report ? { front: 10, frontSys: 4, workers: 20, rest: 5, busyCores: 1.5 } : null,
    distribution: null,
    ...over,
  };
}

Deno.test("median() of an odd count is the middle value, of an even count the mean of the two", () => {
  assert.equal(median([5]), 5);
  assert.equal(median([9, 1, 5]), 5);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([2, 1]), 1.5);
  assert.throws(() => median([]), RangeError);
});

Deno.test("ratio() divides, and is unknown when either side is missing or zero", () => {
  assert.equal(ratio(3, 4), 0.75);
  assert.equal(ratio(null, 4), null);
  assert.equal(ratio(3, undefined), null);
  assert.equal(ratio(3, 0), null);
  assert.equal(ratio(0, 3), null);
});

Deno.test("summarizeRuns() gives the medians of the runs with a report, and their range", () => {
  const s = summarizeRuns([
    run(fakeReport(1000, 0.2, 1.0)),
    run(fakeReport(3000, 0.4, 3.0)),
    run(fakeReport(2000, 0.3, 2.0)),
    run(null, { error: "proxy test: Cannot connect" }),
  ])!;
  assert.equal(s.runs, 3);
  assert.equal(s.rps, 2000);
  assert.deepEqual([s.rpsMin, s.rpsMax], [1000, 3000]);
  assert.equal(s.p50, 0.3);
  assert.equal(s.p99, 2.0);
  assert.deepEqual(s.cpu, { front: 10, frontSys: 4, workers: 20, rest: 5, busyCores: 1.5 });
  assert.equal(s.errors, "proxy test: Cannot connect"); // a failed run is not hidden
});

Deno.test("summarizeRuns() is null without any report, and adds up error counts", () => {
  assert.equal(summarizeRuns([]), null);
  assert.equal(summarizeRuns([run(null, { error: "exit 3" })]), null);
  const s = summarizeRuns([
    run(fakeReport(10, 1, 2, { errors: { TIMEOUT: 2 } })),
    run(fakeReport(10, 1, 2, { errors: { TIMEOUT: 1, QUEUE_FULL: 4 } })),
  ])!;
  assert.equal(s.errors, '{"TIMEOUT":3,"QUEUE_FULL":4}');
  assert.equal(summarizeRuns([run(fakeReport(10, 1, 2))])!.errors, "none");
});

Deno.test("summarizeRuns() gives the median p99 of each method of a mix", () => {
  const mixed = (echo: number, spin: number) =>
    fakeReport(100, 1, 6, {
      by_method: [
        { method: "echo", share_pct: 95, requests: 95, succeeded: 95, latency_ms: lat(echo) },
        { method: "spin", share_pct: 5, requests: 5, succeeded: 5, latency_ms: lat(spin) },
      ],
    });
  const lat = (p99: number) => ({ p50: 1, p90: 1, p99, p999: p99, max: p99, mean: 1 });
  const s = summarizeRuns([run(mixed(1, 5)), run(mixed(3, 7))])!;
  assert.deepEqual(s.p99ByMethod, { echo: 2, spin: 6 });
});

Deno.test("cellRuns() picks the runs of one scenario, shape and target", () => {
  const a = run(fakeReport(1, 1, 1));
  const b = run(fakeReport(2, 1, 1), { target: "haproxy" });
  const c = run(fakeReport(3, 1, 1), { shape: { connections: 16, pipeline: 16 } });
  const d = run(fakeReport(4, 1, 1), { scenario: "mixed" });
  assert.deepEqual(cellRuns([a, b, c, d], "echo", { connections: 16, pipeline: 1 }, "ours"), [a]);
});

function distribution(values: number[]) {
  const h = new LatencyHistogram();
  for (const v of values) h.record(v);
  return parsePercentileDistribution(h.percentileDistribution());
}

Deno.test("valueAtPercentile() reads the first row at or above p, never above max", () => {
  const d = distribution([...Array(98).fill(1), 10.001, 10.001]);
  assert.equal(valueAtPercentile(d, 0.5), 1);
  assert.equal(valueAtPercentile(d, 0.99), 10.001); // the row says 10.007, the top of its bucket
  assert.equal(valueAtPercentile(d, 1), 10.001);
});

Deno.test("latencyCurve() takes the median of the runs at each step, as deep as every run goes", () => {
  const fast = distribution(Array.from({ length: 100 }, (_, i) => 1 + i / 100));
  const slow = distribution(Array.from({ length: 100 }, (_, i) => 3 + i / 100));
  const deep = distribution(Array.from({ length: 10_000 }, (_, i) => 2 + i / 10_000));
  const curve = latencyCurve([fast, slow, deep]);
  assert.ok(curve.length > 5);
  assert.equal(curve[0]!.percentile, 0);
  assert.equal(curve[0]!.inverse, 1);
  for (const p of curve) {
    assert.ok(p.inverse <= 100, `${p.inverse}: deeper than the smallest run`);
    assert.ok(Math.abs(p.inverse - 1 / (1 - p.percentile)) < 1e-9);
    const values = [fast, slow, deep].map((d) => valueAtPercentile(d, p.percentile));
    assert.equal(p.latency, values.sort((a, b) => a - b)[1]);
  }
  for (let i = 1; i < curve.length; i++) {
    assert.ok(curve[i]!.percentile > curve[i - 1]!.percentile);
    assert.ok(curve[i]!.latency >= curve[i - 1]!.latency);
  }
  const half = curve.find((p) => p.percentile === 0.5)!;
  assert.ok(Math.abs(half.latency - 2.5) < 0.01, `${half.latency}`);
  assert.deepEqual(latencyCurve([]), []);
  assert.deepEqual(latencyCurve([distribution([])]), []);
});

Deno.test("parseShapes() reads CONNECTIONSxPIPELINE lists and rejects the rest", () => {
  assert.deepEqual(parseShapes("1x1, 16x8"), [
    { connections: 1, pipeline: 1 },
    { connections: 16, pipeline: 8 },
  ]);
  assert.throws(() => parseShapes("16"), /expected CONNECTIONSxPIPELINE/);
  assert.throws(() => parseShapes("0x1"), SyntaxError);
});

Deno.test("rotate() starts each round one target further", () => {
  assert.deepEqual(rotate(["a", "b", "c"], 0), ["a", "b", "c"]);
  assert.deepEqual(rotate(["a", "b", "c"], 1), ["b", "c", "a"]);
  assert.deepEqual(rotate(["a", "b", "c"], 5), ["c", "a", "b"]);
});

Deno.test("cpuUse() charges /proc ticks to the front end, the workers and the rest, per request", () => {
  const stat = (busy: number, proxy: [number, number], worker: number) =>
    [
      `cpu  ${busy} 0 0 1000 0 0 0 0 0 0`,
      `42 (deno (main)) S 1 2 3 4 5 6 7 8 9 10 ${proxy[0]} ${proxy[1]} 0 0`,
      `43 (deno) S 1 2 3 4 5 6 7 8 9 10 ${worker} 0 0 0`,
    ].join("\n");
  const a = parseCpuSample(stat(100, [10, 5], 20), 0);
  const b = parseCpuSample(stat(300, [40, 15], 70), 1000);
  assert.equal(a.pids.get(42), 15);
  const use = cpuUse(a, b, { frontPids: [42], workerPids: [43] }, 1000);
  // 1 tick = 10 ms; per request: front 40 ticks = 400 µs, of which 10 ticks system time.
  assert.deepEqual(use, { front: 400, frontSys: 100, workers: 500, rest: 1100, busyCores: 2 });
});
