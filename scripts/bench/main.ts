/**
 * `deno task bench`: the same load (`proxy test`, same payload, same worker
 * program) at several connection counts and pipeline depths against
 *
 * - direct: one worker (`proxy backend --listen 127.0.0.1:0`) without proxy;
 * - ours-upstream: `proxy serve --workers 0 --upstream ...` over TCP to the
 *   same N workers HAProxy uses, so the topology is identical side by side;
 * - ours: `proxy serve --workers N`, the product as shipped (its own workers
 *   on unix sockets);
 * - haproxy: HAProxy in TCP mode, `balance leastconn`, in front of N workers
 *   started by hand on TCP;
 * - nginx (when available): nginx's stream module, `least_conn`, in front of
 *   the same N workers;
 *
 * then with a CPU-bound method (`spin`, from `handler.ts`), then with a mix
 * of cheap echoes and a share of slow requests (`spin`, or `block`: no CPU); then a CPU profile of
 * our proxy under load. Writes a Markdown report to `bench/<date>-results.md`
 * (or `--out`) with a latency-by-percentile chart (SVG) per scenario and
 * shape next to it. Loopback only; every cell is bounded in time; everything
 * started is stopped on every path. HAProxy (and nginx with its stream
 * module) are installed with apt-get when missing, unless `--no-install`.
 *
 * This file only reads the flags: `run.ts` does the work.
 *
 * @module
 */

import { Command, InvalidArgumentError } from "commander";
import { duration, intIn } from "../../cli/_options.ts";
import { Cleanups } from "./cleanups.ts";
import { log } from "./log.ts";
import { BENCH_DEFAULTS as D, type BenchOptions } from "./options.ts";
import { runBench } from "./run.ts";

/** The command line parser of `deno task bench`. */
export function benchCommand(): Command {
  return new Command("bench")
    .description("Benchmark our proxy against a worker directly, HAProxy and nginx, on loopback.")
    .option(
      "--cell <duration>",
      "measured load per cell (bare number: seconds)",
      duration("s"),
      D.cell,
    )
    .option("--repeat <n>", "runs of each cell (the report gives medians)", intIn(1, 100), D.repeat)
    .option(
      "--warmup <duration>",
      "warm-up per cell (bare number: seconds)",
      duration("s"),
      D.warmup,
    )
    .option("--workers <n>", "workers behind each proxy", intIn(1, 256), D.workers)
    .option("--shapes <list>", "echo cells: CONNECTIONSxPIPELINE, comma-separated", D.shapes)
    .option("--payload <bytes>", "echo payload size", intIn(0, 1 << 20), D.payload)
    .option("--work-shapes <list>", "shapes of the CPU-bound cells (method spin)", D.workShapes)
    .option(
      "--work-us <n>",
      "microseconds of CPU per request in those cells",
      intIn(1, 1_000_000),
      D.workUs,
    )
    .option("--no-work", "skip the CPU-bound cells")
    .option("--mixed-shapes <list>", "shapes of the mixed-cost cells", D.mixedShapes)
    .option(
      "--mixed-method <name>",
      "what a slow request does there: spin (uses the CPU) or block (holds the worker, no CPU)",
      mixedMethod,
      D.mixedMethod,
    )
    .option(
      "--mixed-us <n>",
      "microseconds a slow request takes there",
      intIn(1, 1_000_000),
      D.mixedUs,
    )
    .option("--mixed-pct <n>", "percent of slow requests there", intIn(1, 99), D.mixedPct)
    .option(
      "--mixed-rate <n>",
      "requests/s there, open loop, below the workers' capacity (0: closed loop)",
      intIn(0, 10_000_000),
      D.mixedRate,
    )
    .option("--no-mixed", "skip the mixed-cost cells")
    .option(
      "--haproxy-threads <n>",
      "HAProxy nbthread (our proxy has one event loop)",
      intIn(1, 64),
      D.haproxyThreads,
    )
    .option("--no-nginx", "skip nginx")
    .option("--no-deno-relay", "skip the Deno byte relay (Deno's floor for the same traffic)")
    .option("--no-install", "do not apt-get install haproxy or nginx when missing")
    .option("--no-profile", "skip the CPU profile")
    .option(
      "--syscall-shapes <list>",
      'count each front end\'s system calls per request with perf stat at these shapes ("" for none)',
      D.syscallShapes,
    )
    .option(
      "--profile-shapes <list>",
      "shapes at which our proxy is CPU-profiled",
      D.profileShapes,
    )
    .option("--no-charts", "skip the latency-by-percentile charts")
    .option("--out <file>", "where to write the Markdown (default bench/<date>-results.md)")
    .exitOverride();
}

/**
 * Runs `deno task bench ARGS`.
 *
 * @returns The exit code: 0 done, 1 failed, 2 usage, 130 interrupted.
 */
/** `arg` as a shell would need it typed: quoted when empty or holding spaces or quotes. */
function shellWord(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** Parses `--mixed-method`. */
function mixedMethod(value: string): "spin" | "block" {
  if (value === "spin" || value === "block") return value;
  throw new InvalidArgumentError(`expected spin or block, got "${value}"`);
}

export async function main(args: string[]): Promise<number> {
  const program = benchCommand();
  try {
    program.parse(args, { from: "user" });
  } catch {
    return 2;
  }
  const cleanups = new Cleanups();
  const stop = () => {
    log("interrupted: stopping everything");
    void cleanups.run().then(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", stop);
  try {
    await runBench(
      program.opts<BenchOptions>(),
      `deno task bench${args.length ? ` ${args.map(shellWord).join(" ")}` : ""}`,
      cleanups,
    );
    return 0;
  } catch (err) {
    log(err instanceof Error ? err.message : String(err));
    return 1;
  } finally {
    await cleanups.run();
    Deno.removeSignalListener("SIGINT", stop);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
