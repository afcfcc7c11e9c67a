/**
 * `proxy serve` (alias `proxy proxy`): the front proxy and its workers.
 *
 * @module
 */

import { Command } from "commander";
import { runProxy } from "../lib/proxy/run_proxy.ts";
import { addLogLevel, addMaxMessageSize, duration, intIn, setUpLogging } from "./_options.ts";
import { parsePortOption } from "./_port.ts";

/** Builds the `serve` subcommand. */
export function serveCommand(): Command {
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
    .option(
      "--workers <n>",
      "number of worker processes",
      intIn(1, 1024),
      navigator.hardwareConcurrency || 1,
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
    .option(
      "--queue-timeout <duration>",
      "how long a request may wait for a worker",
      duration(),
      10_000,
    )
    .option(
      "--worker-start-timeout <duration>",
      "how long a worker may take to get ready",
      duration(),
      10_000,
    )
    .option(
      "--drain-timeout <duration>",
      "on SIGTERM, how long requests in flight may finish",
      duration(),
      10_000,
    )
    .option(
      "--shutdown-grace <duration>",
      "how long workers get to exit before SIGKILL",
      duration(),
      5_000,
    )
    .option(
      "--max-connections <n>",
      "client connections held at once",
      intIn(1, 1_000_000),
      10_000,
    );
  addMaxMessageSize(cmd);
  addLogLevel(cmd);
  return cmd.action(async (opts) => {
    await setUpLogging(opts);
    await runProxy({
      host: opts.host,
      port: opts.port,
      workers: opts.workers,
      ...(opts.workerCmd === undefined ? {} : { workerCmd: opts.workerCmd }),
      backendArgs: opts.handler.flatMap((h: string) => ["--handler", h]),
      maxInFlightPerWorker: opts.maxInFlightPerWorker,
      queueSize: opts.queueSize,
      queueTimeout: opts.queueTimeout,
      startTimeout: opts.workerStartTimeout,
      drainTimeout: opts.drainTimeout,
      shutdownGrace: opts.shutdownGrace,
      maxConnections: opts.maxConnections,
      maxMessageSize: opts.maxMessageSize,
    });
  });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
