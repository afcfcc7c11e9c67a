/**
 * `proxy test`: load a MessagePack-RPC server (by default a proxy started
 * for the test), check every answer, and report throughput and latency.
 *
 * @module
 */

import { Command, InvalidArgumentError, Option } from "commander";
import type { Address } from "../lib/net/address.ts";
import { mainShare, type MixEntry, parseMixEntry } from "../lib/loadtest/request_mix.ts";
import { maxDepth } from "../lib/options/common_options.ts";
import { parseArg } from "../lib/client/call_line.ts";
import {
  addClientSecurity,
  addMaxMessageSize,
  addOption,
  address,
  byteSize,
  duration,
  intIn,
  readClientSecurity,
} from "./_options.ts";

/** Exit code when the test failed (unanswered requests, unexpected errors). */
export const EXIT_FAILED = 1;
/** Exit code when the test could not run (target unreachable, proxy did not start). */
export const EXIT_CANNOT_RUN = 3;

interface TestOptions {
  target?: Address;
  workers?: number;
  duration: number;
  warmup: number;
  grace: number;
  connections: number;
  pipeline: number;
  method: string;
  payload: number;
  params?: unknown[];
  rate?: number;
  mix?: MixEntry[];
  chaos?: number;
  expectError?: string[];
  json: boolean;
  hdrOut?: string;
  maxMessageSize?: number;
  maxDepth?: number;
  tls?: boolean;
  ca?: string;
  authTokenFile?: string;
}

/** Builds the `test` subcommand. */
export function testCommand(): Command {
  const cmd = new Command("test")
    .description(
      "Load a MessagePack-RPC server and check every answer: without --target, a proxy started for the test " +
        "(with its workers, as serve starts them) and stopped after.",
    )
    .option("--target <address>", "load this server instead (HOST:PORT or unix:/path)", address)
    .option("--workers <n>", "workers of the proxy started for the test", intIn(1, 1024))
    .addOption(
      new Option("--duration <duration>", "measured load, e.g. 10s, 500ms (bare number: seconds)")
        .argParser(duration("s")).default(10_000, "10s"),
    )
    .addOption(
      new Option("--warmup <duration>", "load before measuring starts (bare number: seconds)")
        .argParser(duration("s")).default(0, "0s"),
    )
    .addOption(
      new Option("--grace <duration>", "wait this long for the last answers (bare number: seconds)")
        .argParser(duration("s")).default(5_000, "5s"),
    )
    .option("--connections <n>", "connections opened", intIn(1, 100_000), 16)
    .option("--pipeline <n>", "requests in flight per connection", intIn(1, 1_000_000), 1)
    .option("--method <name>", "method called", "echo")
    .option(
      "--payload <bytes>",
      "random bytes sent as the only param (echo must return them)",
      byteSize,
      64,
    )
    .option(
      "--params <json>",
      "a JSON array of params instead of the payload (answers not compared)",
      jsonArray,
    )
    .option(
      "--rate <n>",
      "requests per second over all connections, on a fixed schedule (open loop); the run fails " +
        "when fewer than 95% of the requests due could be sent",
      intIn(1),
    )
    .option(
      "--mix <method:params:share%>",
      "mix in another request, e.g. spin:[5000]:5% (repeatable); the main request gets the rest, " +
        "and latencies are also reported per method",
      mixEntry,
    )
    .option(
      "--chaos <ms>",
      "SIGKILL a random worker of the proxy every so often (e.g. 500ms)",
      duration("ms"),
    )
    .option(
      "--expect-error <code>",
      "an error code the run provokes on purpose (repeatable)",
      collect,
    )
    .option("--json", "print one JSON object instead of the text report", false)
    .option(
      "--hdr-out <file>",
      "write the latencies as HdrHistogram's percentile distribution (ms), for its plotter",
    )
    .addHelpText(
      "after",
      `
Exit codes: 0 every request answered and no unexpected error, ${EXIT_FAILED} the test failed, 2 usage,
${EXIT_CANNOT_RUN} the test could not run. With --chaos, WORKER_EXITED answers are expected; unanswered must stay 0.
Examples:
  proxy test --duration 10s --connections 32 --pipeline 8
  proxy test --target 127.0.0.1:8080 --rate 20000 --json
  proxy test --mix 'sleep:[5]:5%'          # 5% sleep(5) among the echoes
  proxy test --workers 4 --chaos 500ms
  proxy test --target proxy.example.com:8443 --tls --ca ca.pem --auth-token-file token.txt`,
    );
  addMaxMessageSize(cmd);
  addOption(cmd, maxDepth);
  addClientSecurity(cmd);
  return cmd.action(async (opts: TestOptions) => {
    opts.mix ??= [];
    opts.expectError ??= [];
    if (opts.target !== undefined && opts.workers !== undefined) {
      throw new InvalidArgumentError("--workers is for the proxy started without --target");
    }
    const secured = opts.tls || opts.ca !== undefined || opts.authTokenFile !== undefined;
    if (secured && opts.target === undefined) {
      throw new InvalidArgumentError(
        "--tls, --ca and --auth-token-file are for a --target (the proxy started for the test has neither)",
      );
    }
    if ((opts.tls || opts.ca !== undefined) && opts.target?.transport === "unix") {
      throw new InvalidArgumentError("--tls and --ca need a HOST:PORT --target");
    }
    const security = await readClientSecurity(opts);
    if (opts.params !== undefined && cmd.getOptionValueSource("payload") === "cli") {
      throw new InvalidArgumentError("give either --payload or --params, not both");
    }
    try {
      mainShare(opts.mix, opts.method);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    Deno.addSignalListener("SIGINT", onSignal);
    Deno.addSignalListener("SIGTERM", onSignal);
    const encoder = new TextEncoder();
    try {
      // Loaded here, not at start: `serve` and `backend` need none of it.
      const { formatReport } = await import("../lib/loadtest/report.ts");
      const { runLoadTest } = await import("../lib/loadtest/run_load_test.ts");
      const report = await runLoadTest({
        ...(opts.target ? { target: opts.target } : {}),
        ...(opts.workers !== undefined ? { workers: opts.workers } : {}),
        durationMs: opts.duration,
        warmupMs: opts.warmup,
        graceMs: opts.grace,
        connections: opts.connections,
        pipeline: opts.pipeline,
        method: opts.method,
        payloadBytes: opts.payload,
        ...(opts.params !== undefined ? { params: opts.params } : {}),
        ...(opts.rate !== undefined ? { rate: opts.rate } : {}),
        ...(opts.mix.length > 0 ? { mix: opts.mix } : {}),
        ...(opts.chaos !== undefined ? { chaosMs: opts.chaos } : {}),
        expectedErrors: opts.expectError,
        ...(opts.maxMessageSize !== undefined ? { maxMessageSize: opts.maxMessageSize } : {}),
        ...(opts.maxDepth !== undefined ? { maxDepth: opts.maxDepth } : {}),
        ...(opts.hdrOut !== undefined ? { hdrOut: opts.hdrOut } : {}),
        ...security,
        signal: stop.signal,
        ...(Deno.stderr.isTerminal()
          ? { live: (text: string) => Deno.stderr.writeSync(encoder.encode(text)) }
          : {}),
      });
      if (opts.json) console.log(JSON.stringify(report));
      else console.log(formatReport(report).trimEnd());
      Deno.exitCode = report.passed ? 0 : EXIT_FAILED;
    } catch (err) {
      console.error(`proxy test: ${err instanceof Error ? err.message : String(err)}`);
      Deno.exitCode = EXIT_CANNOT_RUN;
    } finally {
      Deno.removeSignalListener("SIGINT", onSignal);
      Deno.removeSignalListener("SIGTERM", onSignal);
    }
  });
}

function jsonArray(v: string): unknown[] {
  // Numbers keep what their text says (big integers exactly, 1.0 a float).
  const value = parseArg(v);
  if (typeof value === "string") {
    throw new InvalidArgumentError(`expected a JSON array such as [10] or ["a", 1], got ${v}`);
  }
  if (!Array.isArray(value)) throw new InvalidArgumentError(`expected a JSON array, got ${v}`);
  return value;
}

function mixEntry(value: string, previous: MixEntry[] | undefined): MixEntry[] {
  try {
    return [...(previous ?? []), parseMixEntry(value)];
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
