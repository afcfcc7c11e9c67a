/**
 * `proxy backend`: a MessagePack-RPC worker or standalone backend server.
 *
 * @module
 */

import { Command, InvalidArgumentError } from "commander";
import { runBackend } from "../lib/backend/run_backend.ts";
import { BACKEND_OPTIONS, type BackendSettings } from "../lib/options/backend_options.ts";
import { type Address, parseAddress } from "../lib/net/address.ts";
import { WORKER_SOCKET_ENV } from "../lib/process/self_command.ts";
import { addOptions, exclusive, setUpLogging } from "./_options.ts";

/** Builds the `backend` subcommand. */
export function backendCommand(): Command {
  const cmd = new Command("backend")
    .description(
      "Serve MessagePack-RPC methods on a Unix socket or TCP: a worker of `proxy serve`, or a backend started by hand.",
    )
    .addHelpText(
      "after",
      `
Signals: SIGINT/SIGTERM and a "shutdown" notification stop accepting, finish what is in flight, and exit.
Examples:
  proxy backend --socket /tmp/w.sock
  proxy backend --listen 127.0.0.1:9000 --handler ./my_methods.ts`,
    );
  addOptions(cmd, BACKEND_OPTIONS);
  return cmd.action(async (opts: Partial<BackendSettings>) => {
    await setUpLogging(opts);
    exclusive(cmd, "socket", "listen");
    let where: Address;
    if (opts.listen !== undefined) {
      try {
        where = parseAddress(opts.listen);
      } catch (err) {
        throw new InvalidArgumentError(`--listen: ${(err as Error).message}`);
      }
      if (where.transport !== "tcp") throw new InvalidArgumentError("--listen takes HOST:PORT");
    } else {
      const path = opts.socket ?? Deno.env.get(WORKER_SOCKET_ENV);
      if (!path) throw new InvalidArgumentError(`give --socket PATH or --listen HOST:PORT`);
      where = { transport: "unix", path };
    }
    const {
      socket: _s,
      listen: _l,
      logLevel: _ll,
      logFormat: _lf,
      logFile: _f,
      logMaxSize: _ls,
      logMaxFiles: _ln,
      ...rest
    } = opts;
    await runBackend({ address: where, ...rest });
  });
}
