/**
 * `proxy serve` (alias `proxy proxy`): the front proxy and its workers.
 *
 * @module
 */

import { Command, InvalidArgumentError, Option } from "commander";
import { POOL_MODES } from "../lib/pool/pool_options.ts";
import { parseRoutePath } from "../lib/protocol/route_key.ts";
import { runProxy } from "../lib/proxy/run_proxy.ts";
import {
  addLogLevel,
  addMaxMessageSize,
  byteSize,
  duration,
  intIn,
  setUpLogging,
} from "./_options.ts";
import { parsePortOption } from "./_port.ts";

const CPUS = navigator.hardwareConcurrency || 1;

/** Builds the `serve` subcommand. */
export function serveCommand(): Command {
  const ms = duration();
  const cmd = new Command("serve")
    .alias("proxy")
    .description(
      "Accept MessagePack-RPC clients on TCP and spread each request over isolated worker processes.",
    )
    .option(
      "--host <host>",
      "interface to listen on (0.0.0.0 exposes the proxy to the network)",
      "127.0.0.1",
    )
    .option("--port <port>", "TCP port (0 picks a free one)", parsePortOption, 8080)
    .addOption(
      new Option("--pool <mode>", "how the pool sizes itself").choices(POOL_MODES).default(
        "static",
      ),
    )
    .option("--workers <n>", "static: number of worker processes", intIn(1, 1024), CPUS)
    .option("--min-workers <n>", "dynamic: workers kept even when idle", intIn(0, 1024), 1)
    .option(
      "--max-workers <n>",
      "dynamic/ondemand/dedicated: most workers (default: 2 x CPUs; dedicated 64)",
      intIn(1, 4096),
    )
    .option(
      "--min-spare <n>",
      "dynamic: idle workers kept ready ahead of demand",
      intIn(0, 1024),
      1,
    )
    .option(
      "--max-spare <n>",
      "dynamic: idle workers above which idle ones stop",
      intIn(0, 1024),
      3,
    )
    .option(
      "--idle-timeout <duration>",
      "dynamic/ondemand/dedicated: idle time before a worker stops",
      ms,
      10_000,
    )
    .option(
      "--route-key <path>",
      "dedicated: path into the first parameter giving the routing key",
      routePath,
      "user_id",
    )
    .option(
      "--worker-cmd <command>",
      "run this program as the worker instead ({socket} = its socket path)",
    )
    .option(
      "--handler <module>",
      "handler module for the built-in workers (repeatable)",
      collect,
      [],
    )
    .option(
      "--max-in-flight-per-worker <n>",
      "requests one worker may have in flight",
      intIn(1, 1_000_000),
      128,
    )
    .option(
      "--queue-size <n>",
      "requests that may wait when every worker is full",
      intIn(0, 10_000_000),
      1024,
    )
    .option("--queue-timeout <duration>", "how long a request may wait for a worker", ms, 10_000)
    .option(
      "--request-timeout <duration>",
      "answer TIMEOUT after this long (0 = never)",
      ms,
      30_000,
    )
    .option(
      "--method-timeout <name=duration>",
      "per-method request timeout (repeatable)",
      methodTimeout,
      {},
    )
    .option(
      "--kill-after <duration>",
      "kill a worker busy with one request this long (0 = never)",
      ms,
      60_000,
    )
    .option(
      "--retry-idempotent <methods>",
      "comma-separated methods retried once on another worker if theirs dies",
      list,
      [],
    )
    .option("--retry-all", "retry every method once when its worker dies", false)
    .option(
      "--max-requests <n>",
      "retire a worker after this many requests (0 = never)",
      intIn(0),
      0,
    )
    .option(
      "--max-requests-jitter <n>",
      "add 0..n requests per worker to --max-requests",
      intIn(0),
      0,
    )
    .option(
      "--max-memory <MB>",
      "retire a worker above this resident memory in MiB (0 = no limit)",
      intIn(0),
      0,
    )
    .option("--memory-check-interval <duration>", "how often worker memory is read", ms, 2_000)
    .option(
      "--crash-loop-threshold <n>",
      "failed starts in a row before a worker stops respawning",
      intIn(1, 1000),
      5,
    )
    .option(
      "--crash-loop-cooldown <duration>",
      "rest before a crash-looping worker is tried again",
      ms,
      30_000,
    )
    .option(
      "--worker-start-timeout <duration>",
      "how long a worker may take to get ready",
      ms,
      10_000,
    )
    .option(
      "--drain-timeout <duration>",
      "on SIGTERM, how long requests in flight may finish",
      ms,
      10_000,
    )
    .option("--shutdown-grace <duration>", "how long workers get to exit before SIGKILL", ms, 5_000)
    .option("--max-connections <n>", "client connections held at once", intIn(1, 1_000_000), 10_000)
    .option(
      "--first-byte-timeout <duration>",
      "close a new connection that sends nothing for this long",
      ms,
      10_000,
    )
    .option(
      "--write-buffer-limit <bytes>",
      "unread answers held per client before its requests stop being read",
      byteSize,
      4 * 1024 * 1024,
    )
    .option(
      "--legacy-pipeline <n>",
      "legacy frames in flight per connection",
      intIn(1, 100_000),
      128,
    )
    .option(
      "--parent-watch",
      "stop (as on SIGTERM) when stdin closes, e.g. under a supervisor holding a pipe",
      false,
    )
    .addHelpText(
      "after",
      `
Signals: SIGINT/SIGTERM drain and stop; SIGHUP replaces the workers one at a time (as the proxy.reload method does).
Examples:
  proxy serve --port 8080 --workers 4
  proxy serve --pool dynamic --min-workers 2 --max-workers 16 --min-spare 2 --max-spare 4
  proxy serve --pool dedicated --route-key user_id --max-workers 100 --idle-timeout 5m
  proxy serve --worker-cmd "python3 my_worker.py {socket}" --request-timeout 5s --kill-after 10s`,
    );
  addMaxMessageSize(cmd);
  addLogLevel(cmd);
  return cmd.action(async (opts) => {
    await setUpLogging(opts);
    if (opts.minSpare > opts.maxSpare) {
      throw new InvalidArgumentError("--min-spare is above --max-spare");
    }
    if (
      opts.maxWorkers !== undefined && opts.pool === "dynamic" && opts.minWorkers > opts.maxWorkers
    ) {
      throw new InvalidArgumentError("--min-workers is above --max-workers");
    }
    await runProxy({
      host: opts.host,
      port: opts.port,
      mode: opts.pool,
      workers: opts.workers,
      minWorkers: opts.minWorkers,
      ...(opts.maxWorkers === undefined ? {} : { maxWorkers: opts.maxWorkers }),
      minSpare: opts.minSpare,
      maxSpare: opts.maxSpare,
      idleTimeout: opts.idleTimeout,
      routeKey: opts.routeKey,
      ...(opts.workerCmd === undefined ? {} : { workerCmd: opts.workerCmd }),
      backendArgs: opts.handler.flatMap((h: string) => ["--handler", h]),
      maxInFlightPerWorker: opts.maxInFlightPerWorker,
      queueSize: opts.queueSize,
      queueTimeout: opts.queueTimeout,
      requestTimeout: opts.requestTimeout,
      methodTimeouts: opts.methodTimeout,
      killAfter: opts.killAfter,
      retry: opts.retryAll ? "all" : opts.retryIdempotent,
      maxRequests: opts.maxRequests,
      maxRequestsJitter: opts.maxRequestsJitter,
      maxMemoryMb: opts.maxMemory,
      memoryCheckInterval: opts.memoryCheckInterval,
      crashLoopThreshold: opts.crashLoopThreshold,
      crashLoopCooldown: opts.crashLoopCooldown,
      startTimeout: opts.workerStartTimeout,
      drainTimeout: opts.drainTimeout,
      shutdownGrace: opts.shutdownGrace,
      maxConnections: opts.maxConnections,
      maxMessageSize: opts.maxMessageSize,
      parentWatch: opts.parentWatch,
      firstByteTimeout: opts.firstByteTimeout,
      writeBufferLimit: opts.writeBufferLimit,
      legacyPipeline: opts.legacyPipeline,
    });
  });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function list(value: string): string[] {
  const names = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (names.length === 0) throw new InvalidArgumentError("expected comma-separated method names");
  return names;
}

function routePath(value: string): string {
  try {
    parseRoutePath(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return value;
}

function methodTimeout(value: string, previous: Record<string, number>): Record<string, number> {
  const eq = value.indexOf("=");
  if (eq <= 0) throw new InvalidArgumentError(`expected NAME=DURATION, got "${value}"`);
  return { ...previous, [value.slice(0, eq)]: duration()(value.slice(eq + 1)) };
}
