/**
 * `proxy client`: call a MessagePack-RPC server from the command line.
 *
 * @module
 */

import { Command, InvalidArgumentError } from "commander";
import { RpcClient } from "../lib/client/rpc_client.ts";
import { formatLegacyReply, LegacyClient, legacyPingPong } from "../lib/client/legacy_client.ts";
import { parseArg } from "../lib/client/call_line.ts";
import {
  callLines,
  callOnce,
  callRepeatedly,
  type ClientOutput,
  isTransportError,
} from "../lib/client/run_client.ts";
import { type Address, parsePort } from "../lib/net/address.ts";
import { maxDepth } from "../lib/options/common_options.ts";
import {
  addClientSecurity,
  addMaxMessageSize,
  addOption,
  type ClientSecurity,
  duration,
  intIn,
  readClientSecurity,
} from "./_options.ts";

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
    .usage(
      "[options] (HOST PORT | unix:PATH) [METHOD [ARG...]]\n       proxy client --legacy [options] HOST PORT",
    )
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
    .option(
      "--legacy",
      "speak the original C++ proxy's CCRPC protocol: ping-pong --func with --body until " +
        "interrupted (or --repeat times)",
      false,
    )
    .option("--func <n>", "with --legacy: the function number", intIn(0, 0xffff_ffff), 1000)
    .option("--body <text>", "with --legacy: the request body", '{"user_id":"allen"}')
    .addHelpText(
      "after",
      `
Exit codes: 0 result, 1 error answer, 2 usage, ${EXIT_CONNECTION} connection failed or closed, ${EXIT_TIMEOUT} timeout.
Examples:
  proxy client 127.0.0.1 8080 echo hello
  proxy client unix:/tmp/w.sock info
  proxy client 127.0.0.1 8080 ping --repeat 10000 -q
  proxy client --tls --ca ca.pem --auth-token-file token.txt proxy.example.com 8443 echo hi
  proxy client --legacy 127.0.0.1 8080 --func 1000 --body '{"user_id":"allen"}' --repeat 3`,
    );
  addMaxMessageSize(cmd);
  addOption(cmd, maxDepth);
  addClientSecurity(cmd);
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
    const io: ClientOutput = { out: (l) => console.log(l), err: (l) => console.error(l) };
    if ((opts.tls || opts.ca !== undefined) && addr.transport === "unix") {
      throw new InvalidArgumentError("--tls and --ca need HOST PORT, not a Unix socket");
    }
    if (opts.legacy) {
      if (rest.length > 0) throw new InvalidArgumentError("--legacy takes no METHOD or ARGs");
      if (opts.authTokenFile !== undefined) {
        throw new InvalidArgumentError("--legacy cannot authenticate: no --auth-token-file");
      }
      Deno.exitCode = await runLegacy(addr, { ...opts, ...await readClientSecurity(opts) }, io);
      return;
    }
    if (["func", "body"].some((name) => cmd.getOptionValueSource(name) === "cli")) {
      throw new InvalidArgumentError("--func and --body need --legacy");
    }
    const [method, ...args] = rest;
    const params = args.map(parseArg);
    if ((opts.repeat !== undefined || opts.loop) && method === undefined) {
      throw new InvalidArgumentError("--repeat and --loop need a METHOD");
    }
    Deno.exitCode = await runClient(
      addr,
      method,
      params,
      { ...opts, ...await readClientSecurity(opts) },
      io,
    );
  });
}

async function runClient(
  addr: Address,
  method: string | undefined,
  params: unknown[],
  opts: ClientSecurity & {
    timeout: number;
    repeat?: number;
    loop: boolean;
    quiet: boolean;
    maxMessageSize?: number;
    maxDepth?: number;
  },
  io: ClientOutput,
): Promise<number> {
  let client: RpcClient;
  try {
    client = await RpcClient.connect(addr, {
      connectTimeout: opts.timeout,
      ...security(opts),
      ...(opts.maxMessageSize === undefined ? {} : { maxMessageSize: opts.maxMessageSize }),
      ...(opts.maxDepth === undefined ? {} : { maxDepth: opts.maxDepth }),
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

// --legacy: ping-pong like the original C++ client, forever or --repeat times.
async function runLegacy(
  addr: Address,
  opts: ClientSecurity & {
    timeout: number;
    repeat?: number;
    quiet: boolean;
    maxMessageSize?: number;
    func: number;
    body: string;
  },
  io: ClientOutput,
): Promise<number> {
  let client: LegacyClient;
  try {
    client = await LegacyClient.connect(addr, {
      connectTimeout: opts.timeout,
      ...security(opts),
      ...(opts.maxMessageSize === undefined ? {} : { maxMessageSize: opts.maxMessageSize }),
    });
  } catch (err) {
    io.err(`proxy client: ${(err as Error).message}`);
    return (err as { code?: string }).code === "TIMEOUT" ? EXIT_TIMEOUT : EXIT_CONNECTION;
  }
  const stop = new AbortController();
  const onInt = () => stop.abort();
  Deno.addSignalListener("SIGINT", onInt);
  try {
    const summary = await legacyPingPong(client, {
      funcNo: opts.func,
      body: opts.body,
      count: opts.repeat ?? Infinity,
      timeout: opts.timeout,
      signal: stop.signal,
      ...(opts.quiet ? {} : { onReply: (r) => io.out(formatLegacyReply(r)) }),
    });
    io.err(
      `${summary.ok + summary.failed} calls (${summary.failed} failed) in ${
        summary.seconds.toFixed(3)
      } s: ${summary.rate.toFixed(0)} calls/s`,
    );
    if (summary.error) {
      io.err(`proxy client: ${summary.error.message}`);
      return summary.error.code === "TIMEOUT" ? EXIT_TIMEOUT : EXIT_CONNECTION;
    }
    return summary.failed > 0 ? 1 : 0;
  } finally {
    Deno.removeSignalListener("SIGINT", onInt);
    client.close();
  }
}

// Only the fields set, as the clients' options want them.
function security(opts: ClientSecurity): ClientSecurity {
  return {
    ...(opts.tls ? { tls: true } : {}),
    ...(opts.caCerts ? { caCerts: opts.caCerts } : {}),
    ...(opts.token !== undefined ? { token: opts.token } : {}),
  };
}
