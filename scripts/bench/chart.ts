/**
 * The latency-by-percentile charts: a Vega-Lite spec (pure), rendered to
 * SVG headless by Vega. x: the percentile on a log scale of 1/(1-p),
 * labelled 50%, 90%, 99%, 99.9%, ...; y: latency in ms; one line per target.
 *
 * @module
 */

import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { CurvePoint } from "./statistics.ts";

/** The targets in the order every chart uses; each keeps its colour in every chart. */
export const CHART_TARGETS: readonly string[] = [
  "direct",
  "ours",
  "ours-upstream",
  "haproxy",
  "nginx",
];

// Vega's "tableau10" colours, the first for direct, the second for ours, ...
const PALETTE = ["#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2"];

/** One line of a chart. */
export interface ChartSeries {
  /** The target's name. */
  target: string;
  /** Its curve. */
  points: readonly CurvePoint[];
}

/** What a chart shows. */
export interface LatencyChart {
  /** Its title. */
  title: string;
  /** One line per target. */
  series: readonly ChartSeries[];
}

/** The tick values of the x axis, 1/(1-p) for p = 0, 50 %, 90 %, 99 %, ... up to `deepest`. */
export function percentileTicks(deepest: number): number[] {
  const ticks = [1, 2];
  for (let t = 10; t <= Math.max(10, deepest * 1.0001); t *= 10) ticks.push(t);
  return ticks;
}

/**
 * The Vega-Lite spec of a latency-by-percentile chart.
 *
 * @param chart Title and lines.
 * @returns A spec for `vega-lite`'s `compile`.
 */
export function latencyChartSpec(chart: LatencyChart): TopLevelSpec {
  const values = chart.series.flatMap((s) =>
    s.points.map((p) => ({ target: s.target, inverse: p.inverse, latency: p.latency }))
  );
  const ticks = percentileTicks(Math.max(2, ...values.map((v) => v.inverse)));
  // 1/(1-0.999) is 999.99...: stretch to the tick 1000, so that 99.9% is labelled.
  const deepest = Math.max(ticks.at(-1)!, ...values.map((v) => v.inverse));
  const known = [
    ...CHART_TARGETS,
    ...chart.series.map((s) => s.target).filter((t) => !CHART_TARGETS.includes(t)),
  ];
  const targets = known.filter((t) => chart.series.some((s) => s.target === t));
  const colours = targets.map((t) => PALETTE[known.indexOf(t) % PALETTE.length]!);
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: chart.title,
    width: 640,
    height: 360,
    background: "white",
    data: { values },
    mark: { type: "line", point: { size: 12 } },
    encoding: {
      x: {
        field: "inverse",
        type: "quantitative",
        title: "percentile",
        scale: { type: "log", domain: [1, deepest] },
        axis: {
          values: ticks,
          // 1/(1-p) back to p, in percent: 10 -> 90%, 1000 -> 99.9%.
          labelExpr: "format(100 - 100 / datum.value, '.6~f') + '%'",
          grid: true,
        },
      },
      y: { field: "latency", type: "quantitative", title: "latency (ms)" },
      color: {
        field: "target",
        type: "nominal",
        title: "target",
        scale: { domain: targets, range: colours },
      },
    },
  };
}

/**
 * Renders a Vega-Lite spec to SVG text, headless (no browser, no canvas).
 *
 * @param spec A Vega-Lite spec.
 * @returns The SVG document.
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
