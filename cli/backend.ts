/**
 * `proxy backend`: a MessagePack-RPC worker or standalone backend server.
 *
 * @module
 */

import { Command, InvalidArgumentError } from "commander";
import { runBackend } from "../lib/backend/run_backend.ts";
import { WORKER_SOCKET_ENV } from "../lib/pool/worker_command.ts";
import type { Address } from "../lib/net/address.ts";
import {
  addLogLevel,
  addMaxMessageSize,
  address,
  byteSize,
  duration,
  setUpLogging,
} from "./_options.ts";

/** Builds the `backend` subcommand. */
export function backendCommand(): Command {
  const cmd = new Command("backend")
    .description(
      "Serve MessagePack-RPC methods on a Unix socket or TCP: a worker of `proxy serve`, or a backend started by hand.",
    )
    .option("--socket <path>", `Unix socket to listen on (default: $${WORKER_SOCKET_ENV})`)
    .option(
      "--listen <host:port>",
      "TCP address to listen on instead, e.g. 127.0.0.1:9000",
      address,
    )
    .option(
      "--handler <module>",
      "module whose exported functions become methods (repeatable)",
      collect,
      [],
    )
    .option("--no-test-methods", "do not serve the test methods sleep, fail and crash")
    .option("--parent-watch", "exit when stdin closes (set by the proxy for its workers)", false)
    .option(
      "--drain-timeout <duration>",
      "how long requests in flight may finish on shutdown",
      duration(),
      10_000,
    );
  cmd.option(
    "--write-buffer-limit <bytes>",
    "unread answers held per client before its requests stop being read",
    byteSize,
    4 * 1024 * 1024,
  );
  addMaxMessageSize(cmd);
  addLogLevel(cmd);
  return cmd.action(async (opts) => {
    await setUpLogging(opts);
    let where: Address;
    if (opts.socket !== undefined && opts.listen !== undefined) {
      throw new InvalidArgumentError("give either --socket or --listen, not both");
    } else if (opts.listen !== undefined) where = opts.listen;
    else {
      const path = opts.socket ?? Deno.env.get(WORKER_SOCKET_ENV);
      if (!path) throw new InvalidArgumentError(`give --socket PATH or --listen HOST:PORT`);
      where = { transport: "unix", path };
    }
    await runBackend({
      address: where,
      handlers: opts.handler,
      testMethods: opts.testMethods,
      parentWatch: opts.parentWatch,
      maxMessageSize: opts.maxMessageSize,
      writeBufferLimit: opts.writeBufferLimit,
      drainTimeout: opts.drainTimeout,
    });
  });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
