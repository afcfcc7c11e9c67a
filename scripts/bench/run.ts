/**
 * The benchmark from start to end: provision, start the targets, run every
 * cell (rotating the targets' order each round), stop the targets, profile
 * our proxy, draw the charts, write the report.
 *
 * @module
 */

import { currentRuntime, type Runtime } from "../../lib/process/self_command.ts";
import { type CellContext, type CellRun, runCell } from "./cell.ts";
import { latencyChartSpec, renderSvg } from "./chart.ts";
import type { Cleanups } from "./cleanups.ts";
import { log } from "./log.ts";
import { loadAverage, machineInfo } from "./machine.ts";
import type { BenchOptions } from "./options.ts";
import { parseShapes, rotate, type Scenario, type Shape, shapeLabel } from "./plan.ts";
import { profileProxy, type ProfileResult } from "./profile.ts";
import { countSyscalls, perfAvailable, type SyscallResult } from "./syscalls.ts";
import { ensureHaproxy, nginxStream } from "./provision.ts";
import { type ChartLink, fmtNum, renderReport } from "./report.ts";
import { cellRuns, latencyCurve } from "./statistics.ts";
import {
  directTarget,
  startBackends,
  startDenoRelay,
  startHaproxy,
  startNginx,
  startOurs,
  startOursUpstream,
  type Target,
} from "./targets.ts";

const ROOT = new URL("../../", import.meta.url);
const MAIN = new URL("../../cli/main.ts", import.meta.url).href;

/** What a scenario is called in chart titles. */
const SCENARIO_TITLES: Record<Scenario, (o: BenchOptions) => string> = {
  echo: (o) => `echo of ${o.payload} B`,
  work: (o) => `spin(${o.workUs})`,
  mixed: (o) => `${o.mixedPct}% ${o.mixedMethod}(${o.mixedUs}) among echoes`,
};

/** The default report path: `bench/<date>-results.md`. */
export function defaultOut(): string {
  return new URL(`bench/${new Date().toISOString().slice(0, 10)}-results.md`, ROOT).pathname;
}

/**
 * Runs the benchmark and writes its report (and charts).
 *
 * @param o The options.
 * @param command The command line, for the report.
 * @param cleanups Where everything started registers its stop; the caller
 * runs them at the end (also on Ctrl-C).
 * @returns The report's path.
 * @throws {Error} When HAProxy is missing or a target cannot start.
 */
export async function runBench(
  o: BenchOptions,
  command: string,
  cleanups: Cleanups,
): Promise<string> {
  const loadBefore = await loadAverage();
  const plan: Record<Scenario, Shape[]> = {
    echo: parseShapes(o.shapes),
    work: o.work ? parseShapes(o.workShapes) : [],
    mixed: o.mixed ? parseShapes(o.mixedShapes) : [],
  };
  await ensureHaproxy(o.install);
  const nginxModule = o.nginx ? await nginxStream(o.install) : null;
  if (o.nginx && nginxModule === null) {
    log("nginx with the stream module is not available: skipping it");
  }

  const runtime: Runtime = { ...currentRuntime(), mainModule: MAIN };
  const dir = await Deno.makeTempDir({ prefix: "proxy-bench-" });
  cleanups.add(() => Deno.remove(dir, { recursive: true }).catch(() => {}));
  const keep = cleanups.size; // the temporary directory outlives the servers
  const start = { runtime, dir, cleanups };

  log(
    `starting ${o.workers} TCP workers, our proxy, HAProxy${nginxModule !== null ? ", nginx" : ""}${
      o.denoRelay ? ", the Deno relay" : ""
    }`,
  );
  const backends = await startBackends(start, o.workers);
  const targets: Target[] = [
    directTarget(backends),
    await startOurs(start, o.workers),
    await startOursUpstream(start, backends),
    await startHaproxy(start, backends, o.haproxyThreads),
  ];
  if (nginxModule !== null) targets.push(await startNginx(start, backends, nginxModule));
  if (o.denoRelay) targets.push(await startDenoRelay(start, backends));

  const ctx: CellContext = { runtime, dir, options: o };
  const runs = await runCells(ctx, plan, targets);
  const syscalls: SyscallResult[] = [];
  if (o.syscallShapes !== "") {
    if (await perfAvailable()) {
      for (const shape of parseShapes(o.syscallShapes)) {
        for (const target of targets.filter((t) => t.name !== "direct")) {
          log(`counting syscalls of ${target.name} at ${shapeLabel(shape)}`);
          syscalls.push(await countSyscalls(ctx, target, shape));
        }
      }
    } else log("perf stat cannot count syscalls here (install linux-perf): skipping that");
  }
  // Stop the servers before profiling, so the profiled proxy has the machine as the cells had.
  await cleanups.run(keep);

  const profiles: ProfileResult[] = [];
  if (o.profile) {
    for (const shape of parseShapes(o.profileShapes)) {
      log(`profiling our proxy at ${shapeLabel(shape)}`);
      profiles.push(await profileProxy(ctx, shape, ROOT.href));
    }
  }

  const out = o.out ?? defaultOut();
  const slash = out.lastIndexOf("/");
  if (slash > 0) await Deno.mkdir(out.slice(0, slash), { recursive: true });
  const charts = o.charts ? await drawCharts(out, o, plan, targets, runs) : [];
  const text = renderReport({
    info: await machineInfo(loadBefore),
    command,
    options: o,
    plan,
    targets,
    runs,
    profiles,
    syscalls,
    charts,
  });
  console.log(text);
  await Deno.writeTextFile(out, text);
  log(`written to ${out}`);
  return out;
}

/** Every cell, `o.repeat` rounds, the targets' order rotating each round. */
async function runCells(
  ctx: CellContext,
  plan: Record<Scenario, Shape[]>,
  targets: readonly Target[],
): Promise<CellRun[]> {
  const fronts = targets.filter((t) => t.name !== "direct");
  const cells: { scenario: Scenario; shape: Shape; targets: readonly Target[] }[] = [
    ...plan.echo.map((shape) => ({ scenario: "echo" as const, shape, targets })),
    ...plan.work.map((shape) => ({ scenario: "work" as const, shape, targets: fronts })),
    ...plan.mixed.map((shape) => ({ scenario: "mixed" as const, shape, targets: fronts })),
  ];
  const total = ctx.options.repeat * cells.reduce((n, c) => n + c.targets.length, 0);
  const runs: CellRun[] = [];
  for (let round = 0; round < ctx.options.repeat; round++) {
    for (const { scenario, shape, targets: these } of cells) {
      for (const target of rotate(these, round)) {
        log(`[${runs.length + 1}/${total}] ${scenario} ${target.name} at ${shapeLabel(shape)}`);
        const run = await runCell(ctx, target, shape, scenario);
        if (run.error) log(`  ${run.error}`);
        else log(`  ${fmtNum(run.report!.rps)} req/s, p99 ${run.report!.latency_ms.p99} ms`);
        runs.push(run);
      }
    }
  }
  return runs;
}

/** One SVG per scenario and shape, next to `out`: `<out without .md>-<scenario>-<C>x<P>.svg`. */
async function drawCharts(
  out: string,
  o: BenchOptions,
  plan: Record<Scenario, Shape[]>,
  targets: readonly Target[],
  runs: readonly CellRun[],
): Promise<ChartLink[]> {
  const base = out.replace(/\.md$/, "");
  const charts: ChartLink[] = [];
  for (const scenario of ["echo", "work", "mixed"] as const) {
    for (const shape of plan[scenario]) {
      const series = targets.flatMap((t) => {
        const distributions = cellRuns(runs, scenario, shape, t.name)
          .flatMap((r) => r.distribution ? [r.distribution] : []);
        const points = latencyCurve(distributions);
        return points.length > 0 ? [{ target: t.name, points }] : [];
      });
      if (series.length === 0) continue;
      const file = `${base}-${scenario}-${shape.connections}x${shape.pipeline}.svg`;
      const title = `${SCENARIO_TITLES[scenario](o)}, ${shapeLabel(shape)}: latency by percentile`;
      await Deno.writeTextFile(file, await renderSvg(latencyChartSpec({ title, series })));
      charts.push({ scenario, shape, file: file.slice(file.lastIndexOf("/") + 1) });
    }
  }
  if (charts.length > 0) log(`${charts.length} charts written next to ${out}`);
  return charts;
}
