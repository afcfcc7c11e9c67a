/**
 * `deno task bench`: the same load (`proxy test`, same payload, same worker
 * program) at several connection counts and pipeline depths against
 *
 * - direct: one worker (`proxy backend --listen 127.0.0.1:0`) without proxy;
 * - ours: `proxy serve --workers N`, the product as shipped (its own workers
 *   on unix sockets);
 * - haproxy: HAProxy in TCP mode, `balance leastconn`, in front of N workers
 *   started by hand on TCP;
 * - nginx (when available): nginx's stream module, `least_conn`, in front of
 *   the same N workers.
 *
 * and then, with a CPU-bound method (`spin`, from `scripts/bench_handler.ts`)
 * instead of the echo, where balancing each request rather than each
 * connection matters. Then a CPU profile of our proxy under load. Prints a
 * Markdown report and writes it to `bench/<date>-results.md` (or `--out`).
 * Loopback only; every cell is bounded in time; everything started is
 * stopped on every path. HAProxy (and nginx with its stream module) are
 * installed with apt-get when missing, unless `--no-install`.
 *
 * @module
 */

import { Command } from "commander";
import { RpcClient } from "../lib/client/rpc_client.ts";
import { duration, intIn } from "../cli/_options.ts";
import { currentRuntime, type Runtime } from "../lib/pool/worker_command.ts";
import { spawnProgram } from "../lib/loadtest/program_command.ts";
import type { LoadReport } from "../lib/loadtest/report.ts";
import { ServerProcess, startProxy } from "../lib/loadtest/server_process.ts";
import { type CpuProfile, type ProfileSummary, summarizeProfile } from "./_cpu_profile.ts";

const ROOT = new URL("../", import.meta.url);
const MAIN = new URL("../cli/main.ts", import.meta.url).href;

interface BenchOptions {
  workUs: number;
  workShapes: string;
  work: boolean;
  cell: number;
  repeat: number;
  warmup: number;
  workers: number;
  shapes: string;
  payload: number;
  haproxyThreads: number;
  nginx: boolean;
  install: boolean;
  profile: boolean;
  out?: string;
}

/** `echo`: the echo of a small payload; `work`: a CPU-bound method (`spin`). */
type Scenario = "echo" | "work";

const HANDLER = new URL("./bench_handler.ts", import.meta.url).pathname;

interface Shape {
  connections: number;
  pipeline: number;
}

interface Target {
  name: string;
  label: string;
  address: string;
  /** The front end's processes (none for direct). */
  frontPids: number[];
  /** The workers behind it. */
  workerPids: number[];
}

/** CPU time spent during a cell, in microseconds per request sent. */
interface CpuUse {
  front: number;
  /** Of `front`, the time in the kernel (system time). */
  frontSys: number;
  workers: number;
  /** Everything else that ran: the generator, mostly. */
  rest: number;
  /** Cores busy on the whole machine, on average. */
  busyCores: number;
}

/** One run of one cell. */
interface CellRun {
  scenario: Scenario;
  shape: Shape;
  target: string;
  report: LoadReport | null;
  error: string | null;
  cpu: CpuUse | null;
}

/** A cell's runs, summarised: medians of the runs that produced a report. */
interface CellSummary {
  rps: number;
  rpsMin: number;
  rpsMax: number;
  p50: number;
  p99: number;
  cpu: CpuUse | null;
  errors: string;
}

function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

function summarize(runs: CellRun[]): CellSummary | null {
  const reports = runs.flatMap((r) => r.report ? [r.report] : []);
  if (reports.length === 0) return null;
  const cpus = runs.flatMap((r) => r.cpu ? [r.cpu] : []);
  const mean = (f: (c: CpuUse) => number) => cpus.reduce((t, c) => t + f(c), 0) / cpus.length;
  const failures = [...new Set(runs.flatMap((r) => r.error ? [r.error] : []))];
  const errors: Record<string, number> = {};
  for (const r of reports) {
    for (const [code, n] of Object.entries(r.errors)) errors[code] = (errors[code] ?? 0) + n;
  }
  return {
    rps: median(reports.map((r) => r.rps)),
    rpsMin: Math.min(...reports.map((r) => r.rps)),
    rpsMax: Math.max(...reports.map((r) => r.rps)),
    p50: median(reports.map((r) => r.latency_ms.p50)),
    p99: median(reports.map((r) => r.latency_ms.p99)),
    cpu: cpus.length === 0 ? null : {
      front: mean((c) => c.front),
      frontSys: mean((c) => c.frontSys),
      workers: mean((c) => c.workers),
      rest: mean((c) => c.rest),
      busyCores: mean((c) => c.busyCores),
    },
    errors: failures.length > 0
      ? failures.join("; ")
      : Object.keys(errors).length > 0
      ? JSON.stringify(errors)
      : "none",
  };
}

const CLK_TCK = 100;

interface CpuSample {
  at: number;
  busy: number;
  total: number;
  pids: Map<number, number>;
  sys: Map<number, number>;
}

/** CPU ticks of the machine and of `pids` (through cat: Deno asks --allow-all to read /proc). */
async function sampleCpu(pids: number[]): Promise<CpuSample> {
  const files = ["/proc/stat", ...pids.map((p) => `/proc/${p}/stat`)];
  const out = await new Deno.Command("cat", { args: files, stdout: "piped", stderr: "null" })
    .output();
  const at = performance.now();
  const lines = new TextDecoder().decode(out.stdout).split("\n");
  const cpu = lines[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
  const busy = total - cpu[3]! - cpu[4]!; // minus idle and iowait
  const map = new Map<number, number>();
  const sys = new Map<number, number>();
  for (const line of lines) {
    const m = /^(\d+) \(.*\) (.*)$/.exec(line);
    if (!m) continue;
    const f = m[2]!.split(" ");
    map.set(Number(m[1]), Number(f[11]) + Number(f[12])); // utime + stime
    sys.set(Number(m[1]), Number(f[12]));
  }
  return { at, busy, total, pids: map, sys };
}

function cpuUse(a: CpuSample, b: CpuSample, target: Target, sent: number): CpuUse {
  const us = (ticks: number) => (ticks * 1e6) / CLK_TCK;
  const sum = (pids: number[]) =>
    pids.reduce((t, p) => t + ((b.pids.get(p) ?? 0) - (a.pids.get(p) ?? 0)), 0);
  const front = us(sum(target.frontPids));
  const frontSys = us(
    target.frontPids.reduce((t, p) => t + ((b.sys.get(p) ?? 0) - (a.sys.get(p) ?? 0)), 0),
  );
  const workers = us(sum(target.workerPids));
  const all = us(b.busy - a.busy);
  const n = Math.max(1, sent);
  return {
    front: front / n,
    frontSys: frontSys / n,
    workers: workers / n,
    rest: Math.max(0, all - front - workers) / n,
    busyCores: (b.busy - a.busy) / CLK_TCK / ((b.at - a.at) / 1000),
  };
}

/** Everything started, stopped in reverse order at the end. */
const cleanups: (() => Promise<unknown>)[] = [];

function log(text: string): void {
  console.error(`[bench] ${text}`);
}

async function sh(command: string): Promise<{ ok: boolean; out: string }> {
  const out = await new Deno.Command("sh", {
    args: ["-c", command],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const dec = new TextDecoder();
  return { ok: out.success, out: (dec.decode(out.stdout) + dec.decode(out.stderr)).trim() };
}

async function has(cmd: string): Promise<boolean> {
  return (await sh(`command -v ${cmd}`)).ok;
}

/** apt-get install, with an `apt-get update` first if the plain install fails. */
async function aptInstall(packages: string[]): Promise<boolean> {
  log(`installing ${packages.join(" ")} with apt-get`);
  const cmd = `DEBIAN_FRONTEND=noninteractive apt-get install -y -q ${packages.join(" ")}`;
  if ((await sh(cmd)).ok) return true;
  await sh("apt-get update -q");
  const again = await sh(cmd);
  if (!again.ok) {
    log(`cannot install ${packages.join(" ")}: ${again.out.split("\n").slice(-3).join(" | ")}`);
  }
  return again.ok;
}

async function ensureHaproxy(install: boolean): Promise<void> {
  if (await has("haproxy")) return;
  if (!install || !(await aptInstall(["haproxy"]))) {
    throw new Error("Cannot run the benchmark: haproxy is missing (apt-get install -y haproxy)");
  }
}

const NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so";

/** The `load_module` line nginx needs for `stream {}`, "" when built in, null when unavailable. */
async function nginxStream(install: boolean): Promise<string | null> {
  const probe = async () => {
    if (!(await has("nginx"))) return null;
    const v = await sh("nginx -V");
    if (/--with-stream(?!=dynamic)(\s|$)/.test(v.out)) return "";
    try {
      await Deno.stat(NGINX_STREAM_MODULE);
      return `load_module ${NGINX_STREAM_MODULE};`;
    } catch {
      return null;
    }
  };
  const found = await probe();
  if (found !== null || !install) return found;
  if (!(await aptInstall(["nginx", "libnginx-mod-stream"]))) return null;
  return await probe();
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Waits until a ping goes through the front end on `port`. A bare connect
 * that is closed at once is not used as a probe: the front end would open
 * a connection to a worker and reset it, and a reset connection stops
 * `proxy backend` from accepting (see bench/ results: Deno's accept throws
 * NotConnected and the accept loop ends).
 */
async function waitReady(port: number, child: Deno.ChildProcess, what: string): Promise<void> {
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = performance.now() + 10_000;
  while (performance.now() < deadline) {
    if (exited) throw new Error(`Cannot start ${what}: it exited`);
    try {
      const client = await RpcClient.connect(`127.0.0.1:${port}`, { connectTimeout: 1000 });
      try {
        await client.call("ping", [], { timeout: 2000 });
        return;
      } finally {
        await client.end();
      }
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`Cannot start ${what}: no answer to ping through port ${port} within 10 s`);
}

/** Starts an outside program; registered for cleanup. */
function spawnForeign(cmd: string, args: string[], what: string): Deno.ChildProcess {
  const child = new Deno.Command(cmd, { args, stdin: "null", stdout: "null", stderr: "piped" })
    .spawn();
  const errText = new Response(child.stderr).text().catch(() => "");
  cleanups.push(async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // exited
    }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // exited
      }
    }, 5000);
    await child.status;
    clearTimeout(timer);
    const text = (await errText).trim();
    if (text) log(`${what} said: ${text.split("\n").slice(-3).join(" | ")}`);
  });
  return child;
}

async function startHaproxy(
  dir: string,
  backends: ServerProcess[],
  threads: number,
): Promise<Target> {
  const port = freePort();
  const config = [
    "global",
    "  maxconn 4096",
    `  nbthread ${threads}`,
    "defaults",
    "  mode tcp",
    "  timeout connect 5s",
    "  timeout client 60s",
    "  timeout server 60s",
    "frontend front",
    `  bind 127.0.0.1:${port}`,
    "  default_backend workers",
    "backend workers",
    "  balance leastconn",
    ...backends.map((b, i) => `  server w${i + 1} ${b.address}`),
    "",
  ].join("\n");
  const file = `${dir}/haproxy.cfg`;
  await Deno.writeTextFile(file, config);
  const child = spawnForeign("haproxy", ["-db", "-f", file], "haproxy");
  await waitReady(port, child, "haproxy");
  return {
    name: "haproxy",
    label: `HAProxy (tcp, leastconn, nbthread ${threads})`,
    address: `127.0.0.1:${port}`,
    frontPids: [child.pid],
    workerPids: backends.map((b) => b.pid),
  };
}

async function startNginx(
  dir: string,
  backends: ServerProcess[],
  loadModule: string,
): Promise<Target> {
  const port = freePort();
  const config = [
    loadModule,
    "daemon off;",
    "master_process off;",
    "worker_processes 1;",
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/nginx-error.log warn;`,
    "events { worker_connections 8192; }",
    "stream {",
    "  upstream workers {",
    "    least_conn;",
    ...backends.map((b) => `    server ${b.address};`),
    "  }",
    `  server { listen 127.0.0.1:${port}; proxy_pass workers; }`,
    "}",
    "",
  ].join("\n");
  const file = `${dir}/nginx.conf`;
  await Deno.writeTextFile(file, config);
  const child = spawnForeign(
    "nginx",
    ["-e", `${dir}/nginx-error.log`, "-p", dir, "-c", file],
    "nginx",
  );
  await waitReady(port, child, "nginx");
  return {
    name: "nginx",
    label: "nginx stream (least_conn, 1 worker process)",
    address: `127.0.0.1:${port}`,
    frontPids: [child.pid],
    workerPids: backends.map((b) => b.pid),
  };
}

/** The pids of a proxy's workers, from its `proxy.stats`. */
async function workerPids(address: string): Promise<number[]> {
  const client = await RpcClient.connect(address);
  try {
    const stats = await client.call("proxy.stats", [], { timeout: 5000 }) as {
      workers: { pid: number | null }[];
    };
    return stats.workers.flatMap((w) => w.pid === null ? [] : [w.pid]);
  } finally {
    client.close();
  }
}

async function startServer(args: string[], runtime: Runtime): Promise<ServerProcess> {
  const server = await ServerProcess.start(args, { runtime });
  cleanups.push(() => server.stop());
  return server;
}

/** One cell: `proxy test --target ... --json`, the same generator for every target. */
async function runCell(
  runtime: Runtime,
  target: Target,
  shape: Shape,
  o: BenchOptions,
  scenario: Scenario = "echo",
): Promise<CellRun> {
  const load = scenario === "echo"
    ? ["--payload", String(o.payload)]
    : ["--method", "spin", "--params", `[${o.workUs}]`];
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
    ...load,
    "--json",
  ];
  const pids = [...target.frontPids, ...target.workerPids];
  const before = await sampleCpu(pids);
  const child = spawnProgram(args, { runtime, stdout: "piped", stderr: "piped" });
  const out = await child.output();
  const after = await sampleCpu(pids);
  const dec = new TextDecoder();
  try {
    const report = JSON.parse(dec.decode(out.stdout)) as LoadReport;
    return {
      scenario,
      shape,
      target: target.name,
      report,
      error: report.passed ? null : report.failures.join("; "),
      cpu: cpuUse(before, after, target, report.sent),
    };
  } catch {
    return {
      scenario,
      shape,
      target: target.name,
      report: null,
      error: dec.decode(out.stderr).trim() || `exit ${out.code}`,
      cpu: null,
    };
  }
}

/** Loads a proxy started with `--cpu-prof` and summarises where its time went. */
async function profileProxy(
  runtime: Runtime,
  o: BenchOptions,
  shape: Shape,
  dir: string,
): Promise<{ shape: Shape; summary: ProfileSummary; rps: number }> {
  const profDir = await Deno.makeTempDir({ dir, prefix: "prof-" });
  const profiled: Runtime = {
    ...runtime,
    denoFlags: [...runtime.denoFlags, "--cpu-prof", `--cpu-prof-dir=${profDir}`],
  };
  const proxy = await startProxy({ workers: o.workers, runtime: profiled });
  let rps = 0;
  try {
    const cell = await runCell(
      runtime,
      { name: "ours", label: "", address: proxy.address, frontPids: [], workerPids: [] },
      shape,
      o,
    );
    rps = cell.report?.rps ?? 0;
  } finally {
    await proxy.stop();
  }
  const files = [...Deno.readDirSync(profDir)].filter((f) => f.name.endsWith(".cpuprofile"));
  if (files.length === 0) throw new Error(`Cannot profile: no .cpuprofile in ${profDir}`);
  const profile = JSON.parse(await Deno.readTextFile(`${profDir}/${files[0]!.name}`)) as CpuProfile;
  return { shape, summary: summarizeProfile(profile, ROOT.href, 18), rps };
}

function fmtNum(n: number, digits = 0): string {
  return n.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

function cpuCells(cpu: CpuUse | null): string {
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

function ratio(a: number | undefined, b: number | undefined): string {
  if (!a || !b) return "–";
  return `${(a / b).toFixed(2)}x`;
}

async function machine(): Promise<Record<string, string>> {
  const cpu = (await sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")).out.trim() ||
    "unknown";
  const mem =
    (await sh("grep MemTotal /proc/meminfo | awk '{printf \"%.1f GiB\", $2/1048576}'")).out;
  const haproxy = (await sh("haproxy -v | head -1")).out;
  const nginx = (await sh("nginx -v 2>&1")).out;
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    nproc: String(navigator.hardwareConcurrency),
    cpu,
    memory: mem,
    kernel: (await sh("uname -sr")).out,
    load: (await sh("cut -d' ' -f1-3 /proc/loadavg")).out,
    deno: `${Deno.version.deno} (V8 ${Deno.version.v8})`,
    haproxy: haproxy || "not installed",
    nginx: nginx.startsWith("nginx version") ? nginx : "not installed",
  };
}

/** The results table and the ratios table of one scenario. */
function resultTables(
  runs: CellRun[],
  scenario: Scenario,
  shapes: Shape[],
  targets: Target[],
): string[] {
  const lines: string[] = [];
  const get = (shape: Shape, target: string) =>
    summarize(
      runs.filter((c) =>
        c.scenario === scenario && c.shape.connections === shape.connections &&
        c.shape.pipeline === shape.pipeline && c.target === target
      ),
    );
  lines.push(
    "| connections x pipeline | target | requests/s | range | p50 ms | p99 ms | errors | " +
      "CPU µs/req: front end (user + sys) | workers | rest (generator) | busy cores |",
  );
  lines.push("| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |");
  for (const shape of shapes) {
    for (const t of targets) {
      const c = get(shape, t.name);
      lines.push(
        `| ${shape.connections} x ${shape.pipeline} | ${t.name} | ${c ? fmtNum(c.rps) : "–"} | ${
          c ? `${fmtNum(c.rpsMin / 1000, 1)}k–${fmtNum(c.rpsMax / 1000, 1)}k` : "–"
        } | ${c ? c.p50.toFixed(3) : "–"} | ${c ? c.p99.toFixed(3) : "–"} | ${
          c?.errors ?? "no run"
        } | ${cpuCells(c?.cpu ?? null)} |`,
      );
    }
  }
  const names = new Set(targets.map((t) => t.name));
  const cols: [string, string, "rps" | "p99"][] = [];
  if (names.has("haproxy")) cols.push(["ours/HAProxy req/s", "haproxy", "rps"]);
  if (names.has("haproxy")) cols.push(["ours/HAProxy p99", "haproxy", "p99"]);
  if (names.has("direct")) cols.push(["ours/direct req/s", "direct", "rps"]);
  if (names.has("nginx")) cols.push(["ours/nginx req/s", "nginx", "rps"]);
  if (names.has("nginx")) cols.push(["ours/nginx p99", "nginx", "p99"]);
  lines.push("", "Ratios of the medians:", "");
  lines.push(`| connections x pipeline | ${cols.map((c) => c[0]).join(" | ")} |`);
  lines.push(`| --- | ${cols.map(() => "---:").join(" | ")} |`);
  for (const shape of shapes) {
    const ours = get(shape, "ours");
    const cells = cols.map(([, other, metric]) =>
      ratio(ours?.[metric], get(shape, other)?.[metric])
    );
    lines.push(`| ${shape.connections} x ${shape.pipeline} | ${cells.join(" | ")} |`);
  }
  return lines;
}

function markdown(
  info: Record<string, string>,
  command: string,
  o: BenchOptions,
  plan: { shapes: Shape[]; workShapes: Shape[] },
  targets: Target[],
  runs: CellRun[],
  profiles: { shape: Shape; summary: ProfileSummary; rps: number }[],
): string {
  const lines: string[] = [];
  lines.push(`# Benchmark ${info.date!.slice(0, 10)}`, "");
  lines.push(`- Date: ${info.date}`);
  lines.push(`- Machine: ${info.nproc} cores (nproc), ${info.cpu}, ${info.memory}, ${info.kernel}`);
  lines.push(`- Deno ${info.deno}; ${info.haproxy}; ${info.nginx}`);
  lines.push(
    `- Load average before the run: ${info.loadBefore}; after: ${info.load} (other work on the ` +
      "machine shows here and in busy cores / rest)",
  );
  lines.push(`- Command: \`${command}\``);
  lines.push(
    `- Load: \`proxy test --target ADDR --json\`, ${o.cell / 1000} s measured after ` +
      `${o.warmup / 1000} s of warm-up per cell, closed loop (each connection keeps PIPELINE ` +
      `requests in flight); one generator process for all targets. Each cell ran ${o.repeat} ` +
      `time(s), the targets in a rotating order; the tables give medians, and the range of ` +
      `requests/s over the runs.`,
  );
  lines.push(
    `- Workers: ${o.workers}, each \`proxy backend --handler scripts/bench_handler.ts\` (the same ` +
      "worker program everywhere).",
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
  lines.push(
    "",
    `## Echo of ${o.payload} random bytes (every answer checked)`,
    "",
    ...resultTables(runs, "echo", plan.shapes, targets),
    "",
    "Targets set for ours: >= 0.8x HAProxy's requests/s with p99 <= 1.5x its p99; with " +
      "pipelining, above HAProxy.",
  );
  if (plan.workShapes.length > 0) {
    lines.push(
      "",
      `## CPU-bound requests: \`spin(${o.workUs})\` (${o.workUs} µs of CPU in the worker each)`,
      "",
      "Where per-request balancing matters: with fewer connections than workers (or a number " +
        "that does not divide evenly), a per-connection balancer leaves workers idle while " +
        "another has a queue.",
      "",
      ...resultTables(runs, "work", plan.workShapes, targets.filter((t) => t.name !== "direct")),
    );
  }
  for (const p of profiles) {
    const busyMs = p.summary.totalMs * p.summary.busyPct / 100;
    lines.push(
      "",
      `## CPU profile of the proxy at ${p.shape.connections} x ${p.shape.pipeline}`,
      "",
      `\`deno run --cpu-prof\` of \`proxy serve --workers ${o.workers}\` under the same load ` +
        `(${fmtNum(p.rps)} requests/s while profiled); ${fmtNum(p.summary.totalMs)} ms sampled ` +
        `from start to exit, main thread busy ${p.summary.busyPct.toFixed(0)} % of it. Shares ` +
        `below are of the busy time (idle left out).`,
      "",
      "| kind of code | % of busy |",
      "| --- | ---: |",
    );
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
  }
  lines.push("");
  return lines.join("\n");
}

function parseShapes(list: string): Shape[] {
  return list.split(",").map((s) => {
    const m = /^(\d+)x(\d+)$/.exec(s.trim());
    if (!m) throw new Error(`Cannot parse shape "${s}": expected CONNECTIONSxPIPELINE, e.g. 16x8`);
    return { connections: Number(m[1]), pipeline: Number(m[2]) };
  });
}

async function bench(o: BenchOptions, command: string): Promise<void> {
  const loadBefore = (await sh("cut -d' ' -f1-3 /proc/loadavg")).out;
  const shapes = parseShapes(o.shapes);
  const workShapes = o.work ? parseShapes(o.workShapes) : [];
  await ensureHaproxy(o.install);
  const nginxModule = o.nginx ? await nginxStream(o.install) : null;
  if (o.nginx && nginxModule === null) {
    log("nginx with the stream module is not available: skipping it");
  }

  const runtime: Runtime = { ...currentRuntime(), mainModule: MAIN };
  const dir = await Deno.makeTempDir({ prefix: "proxy-bench-" });
  cleanups.push(() => Deno.remove(dir, { recursive: true }).catch(() => {}));

  log(
    `starting ${o.workers} TCP workers, our proxy, HAProxy${nginxModule !== null ? ", nginx" : ""}`,
  );
  const backends: ServerProcess[] = [];
  for (let i = 0; i < o.workers; i++) {
    backends.push(
      await startServer(["backend", "--listen", "127.0.0.1:0", "--handler", HANDLER], runtime),
    );
  }
  // Started as `proxy test` starts its own proxy (with --parent-watch, so a
  // killed benchmark leaves no proxy behind).
  const proxy = await startProxy({ workers: o.workers, args: ["--handler", HANDLER], runtime });
  cleanups.push(() => proxy.stop());
  const targets: Target[] = [
    {
      name: "direct",
      label: `one worker (\`proxy backend --listen\`), no proxy`,
      address: backends[0]!.address,
      frontPids: [],
      workerPids: [backends[0]!.pid],
    },
    {
      name: "ours",
      label: `\`proxy serve --workers ${o.workers}\` as shipped (its own workers, on unix sockets)`,
      address: proxy.address,
      frontPids: [proxy.pid],
      workerPids: await workerPids(proxy.address),
    },
    await startHaproxy(dir, backends, o.haproxyThreads),
  ];
  if (nginxModule !== null) targets.push(await startNginx(dir, backends, nginxModule));

  const runs: CellRun[] = [];
  // The CPU-bound cells leave out direct: one worker is the point of comparison there.
  const workTargets = targets.filter((t) => t.name !== "direct");
  const plan: { scenario: Scenario; shape: Shape; targets: Target[] }[] = [
    ...shapes.map((shape) => ({ scenario: "echo" as const, shape, targets })),
    ...workShapes.map((shape) => ({ scenario: "work" as const, shape, targets: workTargets })),
  ];
  const total = o.repeat * plan.reduce((n, p) => n + p.targets.length, 0);
  for (let round = 0; round < o.repeat; round++) {
    for (const { scenario, shape, targets: these } of plan) {
      // Rotate the order, so no target always runs first (or right after a heavy one).
      const order = these.map((_, i) => these[(i + round) % these.length]!);
      for (const target of order) {
        log(
          `[${
            runs.length + 1
          }/${total}] ${scenario} ${target.name} at ${shape.connections} x ${shape.pipeline}`,
        );
        const run = await runCell(runtime, target, shape, o, scenario);
        if (run.error) log(`  ${run.error}`);
        else log(`  ${fmtNum(run.report!.rps)} req/s, p99 ${run.report!.latency_ms.p99} ms`);
        runs.push(run);
      }
    }
  }
  // Stop the servers before profiling, so the profiled proxy has the machine as the cells had.
  while (cleanups.length > 1) await cleanups.pop()!();

  const profiles = [];
  if (o.profile) {
    for (const shape of [{ connections: 16, pipeline: 1 }, { connections: 16, pipeline: 16 }]) {
      log(`profiling our proxy at ${shape.connections} x ${shape.pipeline}`);
      profiles.push(await profileProxy(runtime, o, shape, dir));
    }
  }

  const info = { ...(await machine()), loadBefore };
  const text = markdown(info, command, o, { shapes, workShapes }, targets, runs, profiles);
  console.log(text);
  const out = o.out ??
    new URL(`../bench/${new Date().toISOString().slice(0, 10)}-results.md`, import.meta.url)
      .pathname;
  await Deno.mkdir(new URL("../bench/", import.meta.url), { recursive: true });
  await Deno.writeTextFile(out, text);
  log(`written to ${out}`);
}

async function main(args: string[]): Promise<number> {
  const program = new Command("bench")
    .description("Benchmark our proxy against a worker directly, HAProxy and nginx, on loopback.")
    .option(
      "--cell <duration>",
      "measured load per cell (bare number: seconds)",
      duration("s"),
      3_000,
    )
    .option("--repeat <n>", "runs of each cell (the report gives medians)", intIn(1, 100), 2)
    .option(
      "--work-shapes <list>",
      "shapes of the CPU-bound cells (method spin)",
      "1x16,3x16",
    )
    .option(
      "--work-us <n>",
      "microseconds of CPU per request in those cells",
      intIn(1, 1_000_000),
      200,
    )
    .option("--no-work", "skip the CPU-bound cells")
    .option("--warmup <duration>", "warm-up per cell (bare number: seconds)", duration("s"), 500)
    .option(
      "--workers <n>",
      "workers behind each proxy",
      intIn(1, 256),
      navigator.hardwareConcurrency || 1,
    )
    .option(
      "--shapes <list>",
      "CONNECTIONSxPIPELINE, comma-separated",
      "1x1,16x1,64x1,1x16,16x16,64x16",
    )
    .option("--payload <bytes>", "echo payload size", intIn(0, 1 << 20), 64)
    .option(
      "--haproxy-threads <n>",
      "HAProxy nbthread (our proxy has one event loop)",
      intIn(1, 64),
      1,
    )
    .option("--no-nginx", "skip nginx")
    .option("--no-install", "do not apt-get install haproxy or nginx when missing")
    .option("--no-profile", "skip the CPU profile")
    .option("--out <file>", "where to write the Markdown (default bench/<date>-results.md)")
    .exitOverride();
  try {
    program.parse(args, { from: "user" });
  } catch {
    return 2;
  }
  const stop = () => {
    log("interrupted: stopping everything");
    void runCleanups().then(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", stop);
  try {
    await bench(
      program.opts<BenchOptions>(),
      `deno task bench${args.length ? ` ${args.join(" ")}` : ""}`,
    );
    return 0;
  } catch (err) {
    log(err instanceof Error ? err.message : String(err));
    return 1;
  } finally {
    await runCleanups();
    Deno.removeSignalListener("SIGINT", stop);
  }
}

async function runCleanups(): Promise<void> {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => {});
}

if (import.meta.main) Deno.exit(await main(Deno.args));
