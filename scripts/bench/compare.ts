/**
 * Our proxy against itself: the front end's CPU per request (and requests/s)
 * of several checkouts or flag sets, side by side in one run, in a rotating
 * order, at one load shape. For a change's before and after; the full
 * comparison with HAProxy is `deno task bench`.
 *
 * ```sh
 * git worktree add /tmp/before HEAD~1
 * deno task bench:compare --shape 16x16 /tmp/before .
 * deno task bench:compare --shape 64x16 . ".#--max-in-flight-per-worker 1024"
 * deno task bench:compare --shape 1x16 --load "--method spin --params [200]" /tmp/before .
 * ```
 *
 * Each SPEC is a checkout's directory, optionally followed by `#` and
 * flags for `proxy serve`. The load is this checkout's `proxy test`.
 *
 * @module
 */

import { Command } from "commander";
import { duration, intIn } from "../../cli/_options.ts";
import { startProxy } from "../../lib/loadtest/server_process.ts";
import { currentRuntime } from "../../lib/process/self_command.ts";
import { cpuUse, sampleCpu } from "./cpu_sample.ts";
import { parseShapes, shapeLabel } from "./plan.ts";
import { median } from "./statistics.ts";
import { HANDLER, workerPids } from "./targets.ts";

const MAIN = new URL("../../cli/main.ts", import.meta.url).pathname;

/** One checkout (and flags) under comparison. */
interface Spec {
  label: string;
  dir: string;
  flags: string[];
}

function parseSpec(text: string): Spec {
  const hash = text.indexOf("#");
  const dir = hash < 0 ? text : text.slice(0, hash);
  const flags = hash < 0 ? [] : text.slice(hash + 1).split(" ").filter(Boolean);
  let real: string;
  try {
    real = Deno.realPathSync(dir);
    Deno.statSync(`${real}/cli/main.ts`);
  } catch {
    throw new Error(`Cannot compare "${text}": ${dir} is not a checkout (no cli/main.ts)`);
  }
  return { label: text, dir: real, flags };
}

async function load(address: string, args: string[], ms: number): Promise<number> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      MAIN,
      "test",
      "--target",
      address,
      ...args,
      "--duration",
      `${ms}ms`,
      "--json",
    ],
    stdout: "piped",
    stderr: "null",
  }).output();
  const report = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    sent: number;
    passed: boolean;
  };
  if (!report.passed) throw new Error(`proxy test failed against ${address}`);
  return report.sent;
}

async function main(args: string[]): Promise<void> {
  const program = new Command("bench:compare")
    .description("Front-end CPU per request of checkouts or flag sets, side by side.")
    .argument("<spec...>", "DIR or DIR#FLAGS (flags for proxy serve)")
    .option("--shape <CxP>", "connections x pipeline", "16x16")
    .option("--rounds <n>", "runs of each spec, in a rotating order", intIn(1, 50), 4)
    .option("--workers <n>", "workers of each proxy", intIn(0, 64), 2)
    .option("--cell <duration>", "measured load per run", duration("s"), 3000)
    .option("--load <flags>", "more flags for proxy test (e.g. a method)", "")
    .parse(args, { from: "user" });
  const o = program.opts<
    { shape: string; rounds: number; workers: number; cell: number; load: string }
  >();
  const specs = program.args.map(parseSpec);
  const shape = parseShapes(o.shape)[0]!;
  const loadArgs = [
    "--connections",
    String(shape.connections),
    "--pipeline",
    String(shape.pipeline),
    ...o.load.split(" ").filter(Boolean),
  ];
  const results = new Map<Spec, { us: number[]; workerUs: number[]; rps: number[] }>(
    specs.map((s) => [s, { us: [], workerUs: [], rps: [] }]),
  );
  for (let round = 0; round < o.rounds; round++) {
    for (let i = 0; i < specs.length; i++) {
      const spec = specs[(i + round) % specs.length]!;
      const proxy = await startProxy({
        workers: o.workers,
        args: [...(o.workers > 0 ? ["--handler", HANDLER] : []), ...spec.flags],
        runtime: {
          ...currentRuntime(),
          mainModule: new URL(`file://${spec.dir}/cli/main.ts`).href,
        },
      });
      try {
        await load(proxy.address, loadArgs, 1000); // warm-up
        const workers = o.workers > 0 ? await workerPids(proxy.address) : [];
        const pids = [proxy.pid, ...workers];
        const before = await sampleCpu(pids);
        const sent = await load(proxy.address, loadArgs, o.cell);
        const after = await sampleCpu(pids);
        const use = cpuUse(before, after, { frontPids: [proxy.pid], workerPids: workers }, sent);
        const r = results.get(spec)!;
        r.us.push(use.front);
        r.workerUs.push(use.workers);
        r.rps.push(sent / (o.cell / 1000));
        console.error(
          `round ${round + 1}: ${spec.label}: ${use.front.toFixed(2)} us/req, workers ${
            use.workers.toFixed(2)
          }`,
        );
      } finally {
        await proxy.stop();
      }
    }
  }
  const extra = o.load === "" ? "" : `, proxy test ${o.load}`;
  console.log(`${shapeLabel(shape)}${extra}, ${o.workers} workers, ${o.rounds} rounds (medians):`);
  console.log(
    "| spec | front-end CPU us/req | workers' CPU us/req | requests/s | runs (front us/req) |",
  );
  console.log("| --- | ---: | ---: | ---: | --- |");
  for (const [spec, r] of results) {
    console.log(
      `| \`${spec.label}\` | ${median(r.us).toFixed(2)} | ${median(r.workerUs).toFixed(2)} | ${
        Math.round(median(r.rps))
      } | ${r.us.map((u) => u.toFixed(2)).join(" ")} |`,
    );
  }
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    Deno.exit(1);
  }
}
