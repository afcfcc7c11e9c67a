/**
 * One cell of the benchmark: one scenario at one shape against one target,
 * loaded by `proxy test --target ... --json --hdr-out ...` (the same
 * generator program for every target), with the CPU each side spent.
 *
 * @module
 */

import { type Runtime, spawnProgram } from "../../lib/process/self_command.ts";
import type { LoadReport } from "../../lib/loadtest/report.ts";
import {
  parsePercentileDistribution,
  type PercentileDistribution,
} from "../../lib/loadtest/percentile_distribution.ts";
import { type CpuUse, cpuUse, sampleCpu } from "./cpu_sample.ts";
import type { BenchOptions } from "./options.ts";
import type { Scenario, Shape } from "./plan.ts";
import type { Target } from "./targets.ts";

/** One run of one cell. */
export interface CellRun {
  scenario: Scenario;
  shape: Shape;
  /** The target's name. */
  target: string;
  /** `proxy test`'s report, or null when it produced none. */
  report: LoadReport | null;
  /** What failed (the report's failures, or the generator's error), or null. */
  error: string | null;
  /** CPU per request, or null without a report. */
  cpu: CpuUse | null;
  /** The latency distribution (`--hdr-out`), or null without one. */
  distribution: PercentileDistribution | null;
}

/** The `proxy test` flags that make a scenario's load. */
export function scenarioArgs(
  scenario: Scenario,
  o: Pick<
    BenchOptions,
    "payload" | "workUs" | "mixedMethod" | "mixedUs" | "mixedPct" | "mixedRate"
  >,
): string[] {
  switch (scenario) {
    case "echo":
      return ["--payload", String(o.payload)];
    case "work":
      return ["--method", "spin", "--params", `[${o.workUs}]`];
    case "mixed":
      return [
        "--payload",
        String(o.payload),
        "--mix",
        `${o.mixedMethod}:[${o.mixedUs}]:${o.mixedPct}%`,
        ...(o.mixedRate > 0 ? ["--rate", String(o.mixedRate)] : []),
      ];
  }
}

/** What {@linkcode runCell} needs. */
export interface CellContext {
  /** How to re-invoke this program as the generator. */
  runtime: Runtime;
  /** A private directory for the generator's `--hdr-out` files. */
  dir: string;
  /** The benchmark's options (cell length, warm-up, scenario parameters). */
  options: BenchOptions;
}

/**
 * Runs one cell. Never throws for a failed load: the run then carries the
 * error.
 */
export async function runCell(
  ctx: CellContext,
  target: Target,
  shape: Shape,
  scenario: Scenario,
): Promise<CellRun> {
  const o = ctx.options;
  const hdrFile = await Deno.makeTempFile({ dir: ctx.dir, prefix: "hdr-", suffix: ".txt" });
  const args = [
    "test",
    "--target",
    target.address,
    "--duration",
    `${o.cell}ms`,
    "--warmup",
    `${o.warmup}ms`,
    "--connections",
    String(shape.connections),
    "--pipeline",
    String(shape.pipeline),
    ...scenarioArgs(scenario, o),
    "--json",
    "--hdr-out",
    hdrFile,
  ];
  const pids = [...target.frontPids, ...target.workerPids];
  const before = await sampleCpu(pids);
  const child = spawnProgram(args, { runtime: ctx.runtime, stdout: "piped", stderr: "piped" });
  const out = await child.output();
  const after = await sampleCpu(pids);
  const dec = new TextDecoder();
  const base = { scenario, shape, target: target.name };
  let report: LoadReport;
  try {
    report = JSON.parse(dec.decode(out.stdout)) as LoadReport;
  } catch {
    await Deno.remove(hdrFile).catch(() => {});
    const error = dec.decode(out.stderr).trim() || `exit ${out.code}`;
    return { ...base, report: null, error, cpu: null, distribution: null };
  }
  let distribution: PercentileDistribution | null = null;
  try {
    distribution = parsePercentileDistribution(await Deno.readTextFile(hdrFile));
  } catch {
    // no chart line for this run; the numbers stand
  } finally {
    await Deno.remove(hdrFile).catch(() => {});
  }
  return {
    ...base,
    report,
    error: report.passed ? null : report.failures.join("; "),
    cpu: cpuUse(before, after, target, report.sent),
    distribution,
  };
}
