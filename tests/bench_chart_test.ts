/**
 * Unit tests of the benchmark's latency-by-percentile charts: the spec, and
 * its SVG rendered headless by Vega.
 */

import assert from "node:assert/strict";
import { latencyChartSpec, percentileTicks, renderSvg } from "../scripts/bench/chart.ts";

const points = (scale: number) =>
  [0, 0.5, 0.9, 0.99, 0.999].map((p) => ({
    percentile: p,
    inverse: 1 / (1 - p),
    latency: scale * (1 + 10 * p ** 4),
  }));

Deno.test("percentileTicks() gives 1/(1-p) of 0%, 50%, 90%, 99%, ... down to the deepest point", () => {
  assert.deepEqual(percentileTicks(1000), [1, 2, 10, 100, 1000]);
  assert.deepEqual(percentileTicks(5), [1, 2, 10]);
});

Deno.test("latencyChartSpec() puts the percentile on a log x axis and one line per target", () => {
  const spec = latencyChartSpec({
    title: "echo, 16 x 1",
    series: [
      { target: "haproxy", points: points(2) },
      { target: "ours", points: points(1) },
    ],
  }) as unknown as {
    data: { values: { target: string; inverse: number; latency: number }[] };
    encoding: {
      x: { scale: { type: string; domain: number[] }; axis: { values: number[] } };
      color: { scale: { domain: string[]; range: string[] } };
    };
  };
  assert.equal(spec.data.values.length, 10);
  assert.equal(spec.encoding.x.scale.type, "log");
  assert.deepEqual(spec.encoding.x.scale.domain, [1, 1000]);
  assert.deepEqual(spec.encoding.x.axis.values, [1, 2, 10, 100, 1000]);
  // The targets keep one order and one colour in every chart, whoever is missing.
  assert.deepEqual(spec.encoding.color.scale.domain, ["ours", "haproxy"]);
  const full = latencyChartSpec({
    title: "",
    series: ["nginx", "direct", "ours", "haproxy"].map((target) => ({ target, points: points(1) })),
  }) as unknown as typeof spec;
  assert.deepEqual(full.encoding.color.scale.domain, ["direct", "ours", "haproxy", "nginx"]);
  assert.deepEqual(spec.encoding.color.scale.range, full.encoding.color.scale.range.slice(1, 3));
});

Deno.test("renderSvg() draws the chart as SVG with a line per target and percentile labels", async () => {
  const svg = await renderSvg(latencyChartSpec({
    title: "echo, 16 x 1: latency by percentile",
    series: [
      { target: "direct", points: points(0.5) },
      { target: "ours", points: points(1) },
      { target: "haproxy", points: points(2) },
    ],
  }));
  assert.ok(svg.startsWith("<svg"), svg.slice(0, 80));
  assert.ok(svg.trimEnd().endsWith("</svg>"));
  // One line mark per target, each a path through its points.
  const lines = svg.match(/<g class="mark-line role-mark[^"]*"[^>]*><path [^>]*d="M[^"]+"/g) ?? [];
  assert.equal(lines.length, 3, "three lines");
  for (const label of ["0%", "50%", "90%", "99%", "99.9%", "latency (ms)", "percentile"]) {
    assert.ok(svg.includes(`>${label}</text>`), `label ${label}`);
  }
  for (const target of ["direct", "ours", "haproxy"]) assert.ok(svg.includes(`>${target}</text>`));
});
