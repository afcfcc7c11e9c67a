/**
 * Unit tests of the benchmark's Markdown report: table rows, ratios, empty
 * and failed cells, chart links, the mixed-cost section.
 */

import assert from "node:assert/strict";
import type { LoadReport } from "../lib/loadtest/report.ts";
import { fakeReport as report } from "./helpers/load_report.ts";
import type { CellRun } from "../scripts/bench/cell.ts";
import { BENCH_DEFAULTS } from "../scripts/bench/options.ts";
import type { Scenario, Shape } from "../scripts/bench/plan.ts";
import {
  chartLines,
  cpuCells,
  fmtRatio,
  renderReport,
  type ReportInput,
  resultTables,
} from "../scripts/bench/report.ts";

const S16x1: Shape = { connections: 16, pipeline: 1 };
const S1x16: Shape = { connections: 1, pipeline: 16 };
const TARGETS = [
  { name: "direct", label: "one worker" },
  { name: "ours", label: "our proxy" },
  { name: "haproxy", label: "HAProxy" },
];

function run(
  target: string,
  shape: Shape,
  r: LoadReport | null,
  over: Partial<CellRun> = {},
): CellRun {
  return {
    scenario: "echo" as Scenario,
    shape,
    target,
    report: r,
    error: null,
    cpu: r ? { front: 12.34, frontSys: 5.01, workers: 20, rest: 3.5, busyCores: 1.234 } : null,
    distribution: null,
    ...over,
  };
}

Deno.test("resultTables() writes one row per shape and target with medians and the range", () => {
  const runs = [
    run("ours", S16x1, report(30_000, 0.4, 1.5)),
    run("ours", S16x1, report(40_000, 0.5, 2.5)),
    run("haproxy", S16x1, report(50_000, 0.3, 1.0), {
      cpu: { front: 4.9, frontSys: 4, workers: 20, rest: 3.5, busyCores: 1 },
    }),
    run("direct", S16x1, report(80_000, 0.2, 0.5)),
  ];
  const lines = resultTables(runs, "echo", [S16x1], TARGETS);
  assert.equal(
    lines[0],
    "| connections x pipeline | target | requests/s | range | p50 ms | p99 ms | errors | " +
      "CPU µs/req: front end (user + sys) | workers | rest (generator) | busy cores |",
  );
  assert.equal(
    lines[1],
    "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
  );
  assert.equal(
    lines[3],
    "| 16 x 1 | ours | 35,000 | 30.0k–40.0k | 0.450 | 2.000 | none | 12.3 (7.3 + 5.0) | 20.0 | 3.5 | 1.23 |",
  );
  assert.equal(
    lines[4]!.startsWith("| 16 x 1 | haproxy | 50,000 | 50.0k–50.0k | 0.300 | 1.000 |"),
    true,
  );
  const ratios = lines.slice(lines.indexOf("Ratios of the medians:"));
  assert.deepEqual(ratios.slice(2), [
    "| connections x pipeline | ours/HAProxy req/s | ours/HAProxy p99 | ours/HAProxy CPU | ours/direct req/s |",
    "| --- | ---: | ---: | ---: | ---: |",
    "| 16 x 1 | 0.70x | 2.00x | 2.52x | 0.44x |",
  ]);
});

Deno.test("resultTables() shows a cell that never ran as no run, and a failed one with its error", () => {
  const runs = [
    run("ours", S16x1, null, { error: "proxy test: Cannot connect to 127.0.0.1:9" }),
    run(
      "haproxy",
      S16x1,
      report(100, 1, 2, { passed: false, failures: ["3 requests never answered"] }),
      {
        error: "3 requests never answered",
      },
    ),
  ];
  const lines = resultTables(runs, "echo", [S16x1], TARGETS);
  // direct: no run at all; ours: a run without a report; both have empty cells.
  assert.equal(lines[2], "| 16 x 1 | direct | – | – | – | – | no run | – | – | – | – |");
  assert.equal(lines[3], "| 16 x 1 | ours | – | – | – | – | no run | – | – | – | – |");
  assert.match(lines[4]!, /^\| 16 x 1 \| haproxy \| 100 \| .* \| 3 requests never answered \|/);
  assert.equal(lines.at(-1), "| 16 x 1 | – | – | – | – |"); // no ratio without ours
});

Deno.test("resultTables() with methods adds their p99 columns and ratios", () => {
  const lat = (p99: number) => ({ p50: 1, p90: 1, p99, p999: p99, max: p99, mean: 1 });
  const mixed = (echo: number, spin: number) =>
    report(5000, 0.3, 6, {
      by_method: [
        { method: "echo", share_pct: 95, requests: 1, succeeded: 1, latency_ms: lat(echo) },
        { method: "spin", share_pct: 5, requests: 1, succeeded: 1, latency_ms: lat(spin) },
      ],
    });
  const runs = [
    run("ours", S16x1, mixed(1, 6), { scenario: "mixed" }),
    run("haproxy", S16x1, mixed(4, 9), { scenario: "mixed" }),
  ];
  const lines = resultTables(runs, "mixed", [S16x1], TARGETS.slice(1), ["echo", "spin"]);
  assert.ok(lines[0]!.includes("| p99 ms | p99 ms: echo | p99 ms: spin | errors |"));
  assert.ok(lines[2]!.includes("| 6.000 | 1.000 | 6.000 | none |"), lines[2]);
  assert.equal(
    lines.at(-3),
    "| connections x pipeline | ours/HAProxy req/s | ours/HAProxy p99 | ours/HAProxy p99 echo | ours/HAProxy p99 spin | ours/HAProxy CPU |",
  );
  assert.equal(lines.at(-1), "| 16 x 1 | 1.00x | 1.00x | 0.25x | 0.67x | 1.00x |");
});

Deno.test("resultTables() compares CPU per request with the Deno relay's, and the relay's with HAProxy's", () => {
  const cpu = (front: number) => ({ front, frontSys: 1, workers: 2, rest: 1, busyCores: 1 });
  const runs = [
    run("ours", S1x16, report(100_000, 0.1, 0.5), { cpu: cpu(5) }),
    run("haproxy", S1x16, report(130_000, 0.1, 0.2), { cpu: cpu(2) }),
    run("deno-relay", S1x16, report(120_000, 0.1, 0.3), { cpu: cpu(4) }),
  ];
  const targets = [...TARGETS.slice(1), { name: "deno-relay", label: "relay" }];
  const lines = resultTables(runs, "echo", [S1x16], targets);
  assert.ok(lines.some((l) => l.startsWith("| 1 x 16 | deno-relay | 120,000 |")));
  assert.equal(
    lines.at(-3),
    "| connections x pipeline | ours/HAProxy req/s | ours/HAProxy p99 | ours/HAProxy CPU | " +
      "ours/deno-relay CPU | deno-relay/HAProxy CPU |",
  );
  assert.equal(lines.at(-1), "| 1 x 16 | 0.77x | 2.50x | 2.50x | 1.25x | 2.00x |");
});

Deno.test("cpuCells() and fmtRatio() format unknowns as dashes", () => {
  assert.equal(cpuCells(null), "– | – | – | –");
  assert.equal(
    cpuCells({ front: 0, frontSys: 0, workers: 2, rest: 1, busyCores: 0.5 }),
    "0 | 2.0 | 1.0 | 0.50",
  );
  assert.equal(fmtRatio(null), "–");
  assert.equal(fmtRatio(1.234), "1.23x");
});

Deno.test("chartLines() links each shape's SVG, and nothing without charts", () => {
  const charts = [{ scenario: "echo" as const, shape: S1x16, file: "r-echo-1x16.svg" }];
  assert.deepEqual(chartLines(charts, "echo", [S16x1, S1x16]).slice(2), [
    "![Latency by percentile, echo, 1 x 16](r-echo-1x16.svg)",
  ]);
  assert.deepEqual(chartLines(charts, "work", [S1x16]), []);
});

function input(over: Partial<ReportInput> = {}): ReportInput {
  return {
    info: {
      date: "2026-12-01T10:00:00Z",
      nproc: "2",
      cpu: "AMD EPYC",
      memory: "23.5 GiB",
      kernel: "Linux 6",
      loadBefore: "0.1 0.2 0.3",
      load: "1.0 1.0 1.0",
      deno: "2.9.6",
      haproxy: "HAProxy 2.6",
      nginx: "nginx/1.22",
      commit: "abc1234",
    },
    command: "deno task bench --repeat 1",
    options: { ...BENCH_DEFAULTS, workers: 2, repeat: 1 },
    plan: { echo: [S16x1], work: [], mixed: [S16x1] },
    targets: TARGETS,
    runs: [run("ours", S16x1, report(1000, 1, 2))],
    profiles: [],
    charts: [{ scenario: "mixed", shape: S16x1, file: "r-mixed-16x1.svg" }],
    ...over,
  };
}

Deno.test("renderReport() has the header, a section per scenario run, and the chart links", () => {
  const text = renderReport(input());
  const lines = text.split("\n");
  assert.equal(lines[0], "# Benchmark 2026-12-01");
  assert.ok(lines.includes("- Command: `deno task bench --repeat 1` at commit abc1234"));
  assert.ok(lines.includes("  - **haproxy**: HAProxy"));
  assert.ok(lines.includes("## Echo of 64 random bytes (every answer checked)"));
  assert.ok(!text.includes("## CPU-bound requests"), "work was not run");
  assert.ok(lines.includes("## Mixed cost: 5 % `spin(5000)` among echoes"));
  assert.ok(lines.includes("![Latency by percentile, mixed, 16 x 1](r-mixed-16x1.svg)"));
  // The mixed cells leave out direct.
  const mixed = lines.slice(lines.indexOf("## Mixed cost: 5 % `spin(5000)` among echoes"));
  assert.ok(!mixed.some((l) => l.includes("| direct |")));
  assert.ok(text.endsWith("\n") && !text.endsWith("\n\n"));
  assert.ok(!text.includes("\n\n\n"), "no double blank line");
});
