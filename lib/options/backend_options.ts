/**
 * The options of `proxy backend` (and {@linkcode runBackend}): one table that
 * the library, the CLI, `--help` and the README read.
 *
 * @module
 */

import type { ErrorFormat } from "../protocol/message.ts";
import { LOG_OPTIONS, type LogSettings } from "./log_options.ts";
import {
  backendMaxMessageSize,
  clientIdleTimeout,
  drainTimeout,
  errorFormat,
  maxConnections,
  maxDepth,
  maxInFlightPerConnection,
  messageTimeout,
  writeBufferLimit,
} from "./common_options.ts";
import {
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
  ...LOG_OPTIONS,
];

/** The resolved options of `proxy backend` (what the table gives). */
export interface BackendSettings extends LogSettings {
  socket: string | undefined;
  listen: string | undefined;
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
}

/**
 * Fills the options of a backend from the table's defaults, checking each
 * value given.
 *
 * @throws {OptionError} For a value out of range.
 */
export function resolveBackendSettings(given: Partial<BackendSettings>): BackendSettings {
  return resolveOptions(BACKEND_OPTIONS, given) as unknown as BackendSettings;
}
