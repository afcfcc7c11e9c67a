/**
 * `proxy client`: call a MessagePack-RPC server from the command line.
 *
 * @module
 */

import { Command, InvalidArgumentError } from "commander";
import { RpcClient } from "../lib/client/rpc_client.ts";
import { parseArg } from "../lib/client/call_line.ts";
import {
  callLines,
  callOnce,
  callRepeatedly,
  type ClientOutput,
  isTransportError,
} from "../lib/client/run_client.ts";
import { type Address, parsePort } from "../lib/net/address.ts";
import { addMaxMessageSize, duration, intIn } from "./_options.ts";

/** Exit code when the server cannot be reached or the connection drops. */
export const EXIT_CONNECTION = 3;
/** Exit code when `--timeout` passes without an answer. */
export const EXIT_TIMEOUT = 4;

/** Builds the `client` subcommand. */
export function clientCommand(): Command {
  const cmd = new Command("client")
    .description(
      "Call METHOD with ARGs (each JSON, else a string) and print the result as JSON. Without METHOD: an interactive " +
        "prompt on a terminal, else one call per line of stdin.",
    )
    .usage("[options] (HOST PORT | unix:PATH) [METHOD [ARG...]]")
    .argument("<target>", "HOST (then PORT) or unix:/path/to.sock")
    .argument("[rest...]", "PORT (for HOST), METHOD, ARGs")
    .option(
      "--timeout <duration>",
      "give up on a call (and on connecting) after this long; 0 = never",
      duration(),
      10_000,
    )
    .option("--repeat <n>", "ping-pong METHOD n times, then print count and rate", intIn(1))
    .option(
      "--loop",
      "ping-pong METHOD until interrupted (Ctrl-C), then print count and rate",
      false,
    )
    .option("-q, --quiet", "with --repeat/--loop: print only the summary", false)
    .addHelpText(
      "after",
      `
Exit codes: 0 result, 1 error answer, 2 usage, ${EXIT_CONNECTION} connection failed or closed, ${EXIT_TIMEOUT} timeout.
Examples:
  proxy client 127.0.0.1 8080 echo hello
  proxy client unix:/tmp/w.sock info
  proxy client 127.0.0.1 8080 ping --repeat 10000 -q`,
    );
  addMaxMessageSize(cmd);
  return cmd.action(async (target: string, rest: string[], opts) => {
    let addr: Address;
    if (target.startsWith("unix:")) {
      addr = { transport: "unix", path: target.slice(5) };
    } else {
      const port = rest.shift();
      if (port === undefined) throw new InvalidArgumentError("missing PORT after HOST");
      try {
        addr = {
          transport: "tcp",
          hostname: target.replace(/^\[(.*)\]$/, "$1"),
          port: parsePort(port),
        };
      } catch (err) {
        throw new InvalidArgumentError((err as Error).message);
      }
    }
    const [method, ...args] = rest;
    const params = args.map(parseArg);
    if ((opts.repeat !== undefined || opts.loop) && method === undefined) {
      throw new InvalidArgumentError("--repeat and --loop need a METHOD");
    }
    const io: ClientOutput = { out: (l) => console.log(l), err: (l) => console.error(l) };
    Deno.exitCode = await runClient(addr, method, params, opts, io);
  });
}

async function runClient(
  addr: Address,
  method: string | undefined,
  params: unknown[],
  opts: { timeout: number; repeat?: number; loop: boolean; quiet: boolean; maxMessageSize: number },
  io: ClientOutput,
): Promise<number> {
  let client: RpcClient;
  try {
    client = await RpcClient.connect(addr, {
      connectTimeout: opts.timeout,
      maxMessageSize: opts.maxMessageSize,
    });
  } catch (err) {
    io.err(`proxy client: ${(err as Error).message}`);
    return (err as { code?: string }).code === "TIMEOUT" ? EXIT_TIMEOUT : EXIT_CONNECTION;
  }
  try {
    if (method === undefined) {
      return await callLines(
        client,
        { prompt: Deno.stdin.isTerminal(), timeout: opts.timeout },
        io,
      );
    }
    if (opts.repeat !== undefined || opts.loop) {
      const stop = new AbortController();
      const onInt = () => stop.abort();
      Deno.addSignalListener("SIGINT", onInt);
      try {
        const summary = await callRepeatedly(client, {
          method,
          params,
          count: opts.loop ? Infinity : opts.repeat!,
          timeout: opts.timeout,
          quiet: opts.quiet,
          signal: stop.signal,
        }, io);
        if (isTransportError(summary.firstError)) {
          return (summary.firstError as { code?: string }).code === "TIMEOUT"
            ? EXIT_TIMEOUT
            : EXIT_CONNECTION;
        }
        return summary.failed > 0 ? 1 : 0;
      } finally {
        Deno.removeSignalListener("SIGINT", onInt);
      }
    }
    return await callOnce(client, method, params, io, opts.timeout);
  } catch (err) {
    io.err(`proxy client: ${(err as Error).message}`);
    return (err as { code?: string }).code === "TIMEOUT" ? EXIT_TIMEOUT : EXIT_CONNECTION;
  } finally {
    client.close();
  }
}
