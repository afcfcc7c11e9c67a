/**
 * The options of `proxy backend` (and {@linkcode runBackend}): one table that
 * the library, the CLI, `--help` and the README read.
 *
 * @module
 */

import type { ErrorFormat } from "../protocol/message.ts";
import type { LogLevel } from "../log.ts";
import {
  backendMaxMessageSize,
  clientIdleTimeout,
  drainTimeout,
  errorFormat,
  logLevel,
  maxConnections,
  maxDepth,
  maxInFlightPerConnection,
  messageTimeout,
  writeBufferLimit,
} from "./common_options.ts";
import {
  OptionError,
  type OptionTable,
  repeatOption,
  resolveOptions,
  stringOption,
  switchOption,
} from "./option.ts";

/** The table of `proxy backend` options. */
export const BACKEND_OPTIONS: OptionTable = [
  stringOption({
    name: "socket",
    arg: "path",
    help: "Unix socket to listen on (a stale socket file is replaced)",
    defaultText: "$PROXY_WORKER_SOCKET",
  }),
  stringOption({ name: "listen", arg: "host:port", help: "TCP address to listen on instead" }),
  stringOption({
    name: "tls-cert",
    arg: "file",
    help: "with --listen: serve over TLS with this certificate chain (PEM; needs --tls-key)",
  }),
  stringOption({ name: "tls-key", arg: "file", help: "the private key of --tls-cert (PEM)" }),
  repeatOption({
    name: "handler",
    arg: "module",
    help: "module whose exported functions become methods (repeatable)",
  }),
  switchOption({
    name: "test-methods",
    help: "serve sleep, fail and crash, which let any client stall or crash the worker",
  }),
  switchOption({ name: "parent-watch", help: "exit when stdin closes (the proxy passes it)" }),
  drainTimeout,
  backendMaxMessageSize,
  maxDepth,
  errorFormat,
  writeBufferLimit,
  maxInFlightPerConnection(1024),
  maxConnections,
  messageTimeout,
  clientIdleTimeout,
  logLevel,
];

/** The resolved options of `proxy backend` (what the table gives). */
export interface BackendSettings {
  socket: string | undefined;
  listen: string | undefined;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  handler: string[];
  testMethods: boolean;
  parentWatch: boolean;
  drainTimeout: number;
  maxMessageSize: number;
  maxDepth: number;
  errorFormat: ErrorFormat;
  writeBufferLimit: number;
  maxInFlightPerConnection: number;
  maxConnections: number;
  messageTimeout: number;
  clientIdleTimeout: number;
  logLevel: LogLevel;
}

/**
 * Fills the options of a backend from the table's defaults, checking each
 * value given.
 *
 * @throws {OptionError} For a value out of range.
 */
export function resolveBackendSettings(given: Partial<BackendSettings>): BackendSettings {
  const o = resolveOptions(BACKEND_OPTIONS, given) as unknown as BackendSettings;
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) {
    throw o.tlsCert === undefined
      ? new OptionError("--tls-key", "needs --tls-cert too (both or neither)")
      : new OptionError("--tls-cert", "needs --tls-key too (both or neither)");
  }
  return o;
}
