/**
 * The benchmark's Markdown report: header, one results table and one
 * ratios table per scenario, chart links, CPU profiles. Pure: everything
 * comes in as data.
 *
 * @module
 */

import { type SyscallResult, syscallTable } from "./syscalls.ts";
import type { CellRun } from "./cell.ts";
import type { CpuUse } from "./cpu_sample.ts";
import type { MachineInfo } from "./machine.ts";
import type { BenchOptions } from "./options.ts";
import { sameShape, type Scenario, type Shape, shapeLabel } from "./plan.ts";
import type { ProfileResult } from "./profile.ts";
import { cellRuns, type CellSummary, ratio, summarizeRuns } from "./statistics.ts";

/** A target as the report names it. */
export interface ReportTarget {
  name: string;
  label: string;
}

/** A chart drawn for one scenario at one shape. */
export interface ChartLink {
  scenario: Scenario;
  shape: Shape;
  /** The SVG's path relative to the Markdown file. */
  file: string;
}

/** Everything the report shows. */
export interface ReportInput {
  info: MachineInfo;
  /** The command line that ran the benchmark. */
  command: string;
  options: BenchOptions;
  /** The shapes of each scenario (empty when skipped). */
  plan: Record<Scenario, Shape[]>;
  /** Every target started, in the tables' order. */
  targets: ReportTarget[];
  runs: CellRun[];
  profiles: ProfileResult[];
  /** System calls per request of each front end, when counted. */
  syscalls?: SyscallResult[];
  charts: ChartLink[];
}

/** A number with thousands separators and `digits` decimals. */
export function fmtNum(n: number, digits = 0): string {
  return n.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** `0.85x`, or `–` for an unknown ratio. */
export function fmtRatio(r: number | null): string {
  return r === null ? "–" : `${r.toFixed(2)}x`;
}

/** The four CPU cells of a results row. */
export function cpuCells(cpu: CpuUse | null): string {
  if (!cpu) return "– | – | – | –";
  const front = cpu.front === 0
    ? "0"
    : `${cpu.front.toFixed(1)} (${(cpu.front - cpu.frontSys).toFixed(1)} + ${
      cpu.frontSys.toFixed(1)
    })`;
  return `${front} | ${cpu.workers.toFixed(1)} | ${cpu.rest.toFixed(1)} | ${
    cpu.busyCores.toFixed(2)
  }`;
}

/** A metric of a cell that the ratios compare. */
type Metric = (c: CellSummary) => number | undefined;

/**
 * The results table and the ratios table of one scenario.
 *
 * @param runs All runs (those of other scenarios are ignored).
 * @param scenario The scenario.
 * @param shapes Its shapes, in the rows' order.
 * @param targets The targets that ran it.
 * @param methods With a mix: the methods whose p99 gets a column of its own.
 * @returns Markdown lines.
 */
export function resultTables(
  runs: readonly CellRun[],
  scenario: Scenario,
  shapes: readonly Shape[],
  targets: readonly ReportTarget[],
  methods: readonly string[] = [],
): string[] {
  const get = (shape: Shape, target: string) =>
    summarizeRuns(cellRuns(runs, scenario, shape, target));
  const lines: string[] = [];
  const methodHeads = methods.map((m) => ` p99 ms: ${m} |`).join("");
  lines.push(
    `| connections x pipeline | target | requests/s | range | p50 ms | p99 ms |${methodHeads} ` +
      "errors | CPU µs/req: front end (user + sys) | workers | rest (generator) | busy cores |",
  );
  lines.push(
    `| --- | --- | ---: | ---: | ---: | ---: |${
      methods.map(() => " ---: |").join("")
    } --- | ---: | ---: | ---: | ---: |`,
  );
  for (const shape of shapes) {
    for (const t of targets) {
      const c = get(shape, t.name);
      const byMethod = methods.map((m) => {
        const p99 = c?.p99ByMethod[m];
        return ` ${p99 === undefined ? "–" : p99.toFixed(3)} |`;
      }).join("");
      lines.push(
        `| ${shapeLabel(shape)} | ${t.name} | ${c ? fmtNum(c.rps) : "–"} | ${
          c ? `${fmtNum(c.rpsMin / 1000, 1)}k–${fmtNum(c.rpsMax / 1000, 1)}k` : "–"
        } | ${c ? c.p50.toFixed(3) : "–"} | ${c ? c.p99.toFixed(3) : "–"} |${byMethod} ${
          c?.errors ?? "no run"
        } | ${cpuCells(c?.cpu ?? null)} |`,
      );
    }
  }
  const names = new Set(targets.map((t) => t.name));
  const cols: [string, string, Metric, string][] = [];
  const rps: Metric = (c) => c.rps;
  const p99: Metric = (c) => c.p99;
  const cpu: Metric = (c) => c.cpu?.front;
  const methodP99 = (m: string): Metric => (c) => c.p99ByMethod[m];
  for (const [other, label] of [["haproxy", "HAProxy"], ["direct", "direct"], ["nginx", "nginx"]]) {
    if (!names.has(other!)) continue;
    cols.push([`ours/${label} req/s`, other!, rps, "ours"]);
    if (other === "direct") continue;
    cols.push([`ours/${label} p99`, other!, p99, "ours"]);
    for (const m of methods) cols.push([`ours/${label} p99 ${m}`, other!, methodP99(m), "ours"]);
    if (other === "haproxy") cols.push([`ours/${label} CPU`, other, cpu, "ours"]);
  }
  // Deno's floor: what a relay that parses nothing costs next to ours and HAProxy.
  if (names.has("deno-relay")) {
    cols.push(["ours/deno-relay CPU", "deno-relay", cpu, "ours"]);
    if (names.has("haproxy")) cols.push(["deno-relay/HAProxy CPU", "haproxy", cpu, "deno-relay"]);
  }
  // The same topology as HAProxy: our proxy over TCP to its very workers.
  if (names.has("ours-upstream") && names.has("haproxy")) {
    cols.push(["ours-upstream/HAProxy req/s", "haproxy", rps, "ours-upstream"]);
    cols.push(["ours-upstream/HAProxy p99", "haproxy", p99, "ours-upstream"]);
  }
  lines.push("", "Ratios of the medians:", "");
  lines.push(`| connections x pipeline | ${cols.map((c) => c[0]).join(" | ")} |`);
  lines.push(`| --- | ${cols.map(() => "---:").join(" | ")} |`);
  for (const shape of shapes) {
    const cells = cols.map(([, other, metric, mine]) => {
      const ours = get(shape, mine);
      const theirs = get(shape, other);
      return fmtRatio(ratio(ours ? metric(ours) : null, theirs ? metric(theirs) : null));
    });
    lines.push(`| ${shapeLabel(shape)} | ${cells.join(" | ")} |`);
  }
  return lines;
}

/** The chart images of a scenario, one per shape that has one. */
export function chartLines(
  charts: readonly ChartLink[],
  scenario: Scenario,
  shapes: readonly Shape[],
): string[] {
  const lines: string[] = [];
  for (const shape of shapes) {
    const chart = charts.find((c) => c.scenario === scenario && sameShape(c.shape, shape));
    if (!chart) continue;
    lines.push(`![Latency by percentile, ${scenario}, ${shapeLabel(shape)}](${chart.file})`, "");
  }
  if (lines.length === 0) return [];
  lines.pop(); // the blank line after the last image
  return [
    "Latency by percentile (median of the runs at each percentile step, from each run's HDR " +
    "histogram), one chart per shape:",
    "",
    ...lines,
  ];
}

function profileLines(p: ProfileResult, workers: number): string[] {
  const busyMs = p.summary.totalMs * p.summary.busyPct / 100;
  const lines = [
    "",
    `## CPU profile of the proxy at ${shapeLabel(p.shape)}`,
    "",
    `\`deno run --cpu-prof\` of \`proxy serve --workers ${workers}\` under the same load ` +
    `(${fmtNum(p.rps)} requests/s while profiled); ${fmtNum(p.summary.totalMs)} ms sampled ` +
    `from start to exit, main thread busy ${p.summary.busyPct.toFixed(0)} % of it. Shares ` +
    `below are of the busy time (idle left out).`,
    "",
    "| kind of code | % of busy |",
    "| --- | ---: |",
  ];
  const ofBusy = (ms: number) => busyMs > 0 ? (100 * ms) / busyMs : 0;
  for (const c of p.summary.categories) {
    if (c.name.startsWith("idle") || ofBusy(c.selfMs) < 0.5) continue;
    lines.push(`| ${c.name} | ${ofBusy(c.selfMs).toFixed(1)} |`);
  }
  lines.push("", "| function | where | % of busy |", "| --- | --- | ---: |");
  for (const f of p.summary.functions) {
    if (f.name === "(idle)") continue;
    lines.push(`| \`${f.name}\` | ${f.where || "–"} | ${ofBusy(f.selfMs).toFixed(1)} |`);
  }
  return lines;
}

/**
 * The whole report.
 *
 * @param input What ran and what came out.
 * @returns Markdown, ending with a newline.
 */
export function renderReport(input: ReportInput): string {
  const { info, options: o, plan, targets, runs, charts } = input;
  const lines: string[] = [];
  lines.push(`# Benchmark ${info.date.slice(0, 10)}`, "");
  lines.push(`- Date: ${info.date}`);
  lines.push(`- Machine: ${info.nproc} cores (nproc), ${info.cpu}, ${info.memory}, ${info.kernel}`);
  lines.push(`- Deno ${info.deno}; ${info.haproxy}; ${info.nginx}`);
  lines.push(
    `- Load average before the run: ${info.loadBefore}; after: ${info.load} (other work on the ` +
      "machine shows here and in busy cores / rest)",
  );
  lines.push(`- Command: \`${input.command}\` at commit ${info.commit}`);
  lines.push(
    `- Load: \`proxy test --target ADDR --json\`, ${o.cell / 1000} s measured after ` +
      `${o.warmup / 1000} s of warm-up per cell, closed loop (each connection keeps PIPELINE ` +
      `requests in flight); one generator process for all targets. Each cell ran ${o.repeat} ` +
      `time(s), the targets in a rotating order; the tables give medians, and the range of ` +
      `requests/s over the runs.`,
  );
  lines.push(
    `- Workers: ${o.workers}, each \`proxy backend --handler scripts/bench/handler.ts\` (the ` +
      "same worker program everywhere).",
  );
  lines.push("- Targets:");
  for (const t of targets) lines.push(`  - **${t.name}**: ${t.label}`);
  lines.push(
    "- Everything (generator, proxy, workers) shares this machine's cores; the numbers compare the " +
      "front ends under the same conditions, not the ceiling of any of them. CPU µs/req is the CPU " +
      "time (user + system, from /proc) each group of processes spent per request sent in the cell " +
      "(warm-up included); rest = the machine's busy time minus those, i.e. mostly the generator " +
      "and kernel work not charged to them; busy cores = the machine's average over the cell.",
  );
  if (plan.echo.length > 0) {
    lines.push(
      "",
      `## Echo of ${o.payload} random bytes (every answer checked)`,
      "",
      ...resultTables(runs, "echo", plan.echo, targets),
      "",
      "Targets set for ours: >= 0.8x HAProxy's requests/s with p99 <= 1.5x its p99; with " +
        "pipelining, above HAProxy.",
      "",
      ...chartLines(charts, "echo", plan.echo),
    );
  }
  // The CPU-bound and mixed cells leave out direct: one worker is the point of comparison there.
  const fronts = targets.filter((t) => t.name !== "direct");
  if (plan.work.length > 0) {
    lines.push(
      "",
      `## CPU-bound requests: \`spin(${o.workUs})\` (${o.workUs} µs of CPU in the worker each)`,
      "",
      "Where per-request balancing matters: with fewer connections than workers (or a number " +
        "that does not divide evenly), a per-connection balancer leaves workers idle while " +
        "another has a queue.",
      "",
      ...resultTables(runs, "work", plan.work, fronts),
      "",
      ...chartLines(charts, "work", plan.work),
    );
  }
  if (plan.mixed.length > 0) {
    lines.push(
      "",
      `## Mixed cost: ${o.mixedPct} % \`${o.mixedMethod}(${o.mixedUs})\` among echoes`,
      "",
      `\`proxy test --payload ${o.payload} --mix ${o.mixedMethod}:[${o.mixedUs}]:${o.mixedPct}%${
        o.mixedRate > 0 ? ` --rate ${o.mixedRate}` : ""
      }\`: ` +
        `${o.mixedPct} % of the requests take ${o.mixedUs / 1000} ms ` +
        (o.mixedMethod === "spin"
          ? "of CPU in the worker"
          : "in the worker without using the CPU (it blocks, as a slow synchronous call would)") +
        ", the " +
        "rest are echoes" +
        (o.mixedRate > 0
          ? `, sent at ${o.mixedRate} requests/s on a fixed schedule (open loop), below what the workers can serve. `
          : ", closed loop (the workers saturated). ") +
        "An echo that waits behind a slow request on the same worker shows in " +
        "the echoes' p99; a per-connection balancer keeps sending a connection's requests to its " +
        "worker while that worker is busy.",
      "",
      ...resultTables(runs, "mixed", plan.mixed, fronts, ["echo", o.mixedMethod]),
      "",
      ...chartLines(charts, "mixed", plan.mixed),
    );
  }
  if (input.syscalls && input.syscalls.length > 0) {
    lines.push(
      "## System calls per request (front end only)",
      "",
      "Counted by the kernel's tracepoints with `perf stat -e raw_syscalls:sys_enter,syscalls:sys_enter_* -p PIDS` " +
        "on every thread of the front-end process during one extra echo cell per shape (warm-up included), " +
        "divided by the requests sent. reads: read, readv, recvfrom, recvmsg; writes: write, writev, sendto, " +
        "sendmsg, splice; epoll: epoll_wait, epoll_pwait, epoll_ctl; all: every system call.",
      "",
      ...syscallTable(input.syscalls),
      "",
    );
  }
  for (const p of input.profiles) lines.push(...profileLines(p, o.workers));
  // Sections end with a blank line or not (no charts): one blank line between blocks.
  const tidy = lines.filter((l, i) => !(l === "" && lines[i - 1] === ""));
  while (tidy.at(-1) === "") tidy.pop();
  return tidy.join("\n") + "\n";
}
