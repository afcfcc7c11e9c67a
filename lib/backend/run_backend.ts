/**
 * `proxy backend` as a whole process: a {@linkcode BackendServer} with the
 * built-in and user methods, stopped by signals, a `shutdown` notification or
 * (with `parentWatch`) the end of stdin.
 *
 * @module
 */

import { type Address, formatAddress } from "../net/address.ts";
import { readServerCert } from "../net/tls.ts";
import { OptionError } from "../options/option.ts";
import { getLogger } from "../log.ts";
import { type BackendSettings, resolveBackendSettings } from "../options/backend_options.ts";
import { BackendServer } from "./backend_server.ts";
import { legacyMethods } from "./legacy_methods.ts";
import { builtinMethods, loadHandlerModule, type Methods } from "./methods.ts";

/**
 * Options of {@linkcode runBackend}: where to listen, and any of the
 * `proxy backend` options (see `BACKEND_OPTIONS` for their defaults).
 */
export interface RunBackendOptions extends
  Partial<
    Omit<
      BackendSettings,
      "socket" | "listen" | "logLevel" | "logFormat" | "logFile" | "logMaxSize" | "logMaxFiles"
    >
  > {
  /** Where to listen. */
  address: Address;
  /** Called once listening, with the bound address. */
  onListening?: (address: Address) => void;
}

/**
 * Runs a backend until it is told to stop; resolves after a clean shutdown.
 *
 * @throws {OptionError} For an option out of range.
 *
 * @example A backend on a free port, stopped by a `shutdown` notification
 * ```ts
 * import assert from "node:assert/strict";
 * import { runBackend } from "./run_backend.ts";
 * import { RpcClient } from "../client/rpc_client.ts";
 * import { formatAddress } from "../net/address.ts";
 *
 * const listening = Promise.withResolvers<string>();
 * const backend = runBackend({
 *   address: { transport: "tcp", hostname: "127.0.0.1", port: 0 },
 *   onListening: (address) => listening.resolve(formatAddress(address)),
 * });
 * const client = await RpcClient.connect(await listening.promise);
 * assert.equal(await client.call("echo", [1.5]), 1.5);
 * client.notify("shutdown");
 * await backend; // finished what it had, stopped
 * client.close();
 * ```
 */
export async function runBackend(options: RunBackendOptions): Promise<void> {
  const log = getLogger(["backend"]);
  const { address, onListening, ...given } = options;
  const o = resolveBackendSettings(given);
  if (o.tlsCert !== undefined && address.transport !== "tcp") {
    throw new OptionError("--tls-cert", "TLS needs a TCP address (--listen HOST:PORT)");
  }
  const tls = o.tlsCert === undefined ? undefined : await readServerCert(o.tlsCert, o.tlsKey!);
  let server: BackendServer | null = null;
  const methods: Methods = builtinMethods({
    testMethods: o.testMethods,
    requests: () => server?.requests ?? 0,
  });
  // `legacy.call` for the legacy protocol; a handler module may replace it.
  Object.assign(methods, legacyMethods());
  for (const handler of o.handler) {
    Object.assign(methods, await loadHandlerModule(handler));
  }
  let stop!: (why: string) => void;
  const stopped = new Promise<string>((resolve) => stop = resolve);
  server = new BackendServer({
    address,
    ...(tls ? { tls } : {}),
    methods,
    maxMessageSize: o.maxMessageSize,
    writeBufferLimit: o.writeBufferLimit,
    errorFormat: o.errorFormat,
    maxDepth: o.maxDepth,
    messageTimeout: o.messageTimeout,
    idleTimeout: o.clientIdleTimeout,
    maxConnections: o.maxConnections,
    maxInFlightPerConnection: o.maxInFlightPerConnection,
    onShutdownRequest: () => stop("shutdown notification"),
  });
  let bound: Address;
  try {
    bound = await server.listen();
  } catch (err) {
    if (!tls || err instanceof Deno.errors.AddrInUse) throw err;
    throw new OptionError(
      "--tls-cert",
      `cannot listen with ${o.tlsCert} and key ${o.tlsKey}: ${(err as Error).message}`,
    );
  }
  // A fixed, unquoted line: scripts and tests wait for "listening on ADDRESS".
  log.info(`Backend ${Deno.pid} listening on ${formatAddress(bound)}${tls ? " (TLS)" : ""}`);
  onListening?.(bound);

  const onSignal = () => stop("signal");
  Deno.addSignalListener("SIGTERM", onSignal);
  Deno.addSignalListener("SIGINT", onSignal);
  if (o.parentWatch) void watchParent(() => stop("parent gone"));

  const why = await stopped;
  log.info("Backend {pid} stopping: {why}", { pid: Deno.pid, why });
  await server.close(AbortSignal.timeout(o.drainTimeout));
  Deno.removeSignalListener("SIGTERM", onSignal);
  Deno.removeSignalListener("SIGINT", onSignal);
}

/**
 * Calls `onGone` when stdin reaches its end: a parent that holds our stdin
 * pipe and dies closes it, even when killed with SIGKILL.
 */
export async function watchParent(onGone: () => void): Promise<void> {
  const buf = new Uint8Array(256);
  try {
    while ((await Deno.stdin.read(buf)) !== null) {
      // The parent never writes; anything read is ignored.
    }
  } catch {
    // stdin unreadable counts as gone
  }
  onGone();
}
