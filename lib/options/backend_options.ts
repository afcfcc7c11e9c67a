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
  ...LOG_OPTIONS,
];

/**
 * The resolved options of `proxy backend` (what the table gives), each from
 * its `--flag`. Durations are milliseconds and sizes bytes; defaults are
 * written as the CLI writes them.
 */
export interface BackendSettings extends LogSettings {
  /**
   * `--socket`: Unix socket to listen on (a stale socket file is replaced). Default:
   * `$PROXY_WORKER_SOCKET`.
   */
  socket: string | undefined;
  /** `--listen`: TCP address to listen on instead. */
  listen: string | undefined;
  /**
   * `--tls-cert`: with --listen: serve over TLS with this certificate chain (PEM; needs --tls-key).
   */
  tlsCert: string | undefined;
  /** `--tls-key`: the private key of --tls-cert (PEM). */
  tlsKey: string | undefined;
  /** `--handler`: module whose exported functions become methods (repeatable). */
  handler: string[];
  /**
   * `--test-methods`: serve sleep, fail and crash, which let any client stall or crash the worker.
   * Default: `off`.
   */
  testMethods: boolean;
  /** `--parent-watch`: exit when stdin closes (the proxy passes it). Default: `off`. */
  parentWatch: boolean;
  /**
   * `--drain-timeout`: on SIGINT/SIGTERM, how long requests in flight may finish. Default: `10s`.
   */
  drainTimeout: number;
  /** `--max-message-size`: largest message accepted (MESSAGE_TOO_LARGE beyond). Default: `8MiB`. */
  maxMessageSize: number;
  /**
   * `--max-depth`: deepest nesting of arrays and maps decoded (INVALID_PARAMS beyond). Default:
   * `512`.
   */
  maxDepth: number;
  /**
   * `--error-format`: errors as {code, message, data} maps, or [code, message] arrays (Neovim,
   * pynvim). Default: `map`.
   */
  errorFormat: ErrorFormat;
  /**
   * `--write-buffer-limit`: unread answers held per client; beyond, its requests stop being read
   * until it catches up. Default: `4MiB`.
   */
  writeBufferLimit: number;
  /**
   * `--max-in-flight-per-connection`: requests one connection may have in flight; beyond, it is not
   * read until answers go out. Default: `1024`.
   */
  maxInFlightPerConnection: number;
  /** `--max-connections`: client connections held at once; more are refused. Default: `10000`. */
  maxConnections: number;
  /**
   * `--message-timeout`: close a connection that sends part of a message and stalls this long (0 =
   * never). Default: `30s`.
   */
  messageTimeout: number;
  /**
   * `--client-idle-timeout`: close a connection idle between messages this long, nothing owed (0 =
   * never). Default: `0`.
   */
  clientIdleTimeout: number;
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
