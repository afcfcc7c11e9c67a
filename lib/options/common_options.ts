/**
 * Options several commands share, defined once.
 *
 * @module
 */

import { DEFAULT_MAX_DEPTH } from "../protocol/encode.ts";
import { MAX_ENVELOPE_HEAD } from "../protocol/envelope.ts";
import { ERROR_FORMATS, type ErrorFormat } from "../protocol/message.ts";
import { LOG_LEVELS, type LogLevel } from "../log.ts";
import {
  choiceOption,
  durationOption,
  intOption,
  sizeOption,
  stringOption,
  switchOption,
} from "./option.ts";

/** The largest size a MessagePack length can state: 4 GiB - 1. */
export const MAX_MESSAGE_SIZE_LIMIT = 2 ** 32 - 1;

/** `--max-message-size`: the largest message accepted. */
export const maxMessageSize = sizeOption({
  name: "max-message-size",
  help: "largest message accepted (MESSAGE_TOO_LARGE beyond)",
  default: 8 * 1024 * 1024,
  min: 64,
  max: MAX_MESSAGE_SIZE_LIMIT,
});

/**
 * `backend --max-message-size`: a backend also takes what a proxy with the
 * largest limit forwards, its msgid rewrite included.
 */
export const backendMaxMessageSize = sizeOption({
  name: "max-message-size",
  help: "largest message accepted (MESSAGE_TOO_LARGE beyond)",
  default: 8 * 1024 * 1024,
  min: 64,
  max: MAX_MESSAGE_SIZE_LIMIT + MAX_ENVELOPE_HEAD,
});

/** `--max-depth`: the deepest nesting decoded. */
export const maxDepth = intOption({
  name: "max-depth",
  help: "deepest nesting of arrays and maps decoded (INVALID_PARAMS beyond)",
  default: DEFAULT_MAX_DEPTH,
  min: 1,
  max: 5_000, // deeper, the recursive decoder would overflow the stack (about 9,000)
});

/** `--error-format`: how errors are written. */
export const errorFormat = choiceOption<ErrorFormat>({
  name: "error-format",
  help: "errors as {code, message, data} maps, or [code, message] arrays (Neovim, pynvim)",
  default: "map",
  choices: ERROR_FORMATS,
});

/** `--log-level`. */
export const logLevel = choiceOption<LogLevel>({
  name: "log-level",
  help: "least severe log level written (to stderr, or to --log-file)",
  default: "info",
  choices: LOG_LEVELS,
});

/** `--message-timeout`: a message begun must arrive within this. */
export const messageTimeout = durationOption({
  name: "message-timeout",
  help: "close a connection that sends part of a message and stalls this long (0 = never)",
  default: 30_000,
});

/** `--client-idle-timeout`: close connections idle between messages. */
export const clientIdleTimeout = durationOption({
  name: "client-idle-timeout",
  help: "close a connection idle between messages this long, nothing owed (0 = never)",
  default: 0,
});

/** `--write-buffer-limit`: unread answers held per client. */
export const writeBufferLimit = sizeOption({
  name: "write-buffer-limit",
  help: "unread answers held per client; beyond, its requests stop being read until it catches up",
  default: 4 * 1024 * 1024,
  min: 1024,
  max: 2 ** 32,
});

/** `--drain-timeout`: how long requests in flight may finish on stop. */
export const drainTimeout = durationOption({
  name: "drain-timeout",
  help: "on SIGINT/SIGTERM, how long requests in flight may finish",
  default: 10_000,
});

/** `--max-in-flight-per-connection`. */
export function maxInFlightPerConnection(fallback: number) {
  return intOption({
    name: "max-in-flight-per-connection",
    help: "requests one connection may have in flight; beyond, it is not read until answers go out",
    default: fallback,
    min: 1,
    max: 1_000_000,
  });
}

/** `--max-connections`. */
export const maxConnections = intOption({
  name: "max-connections",
  help: "client connections held at once; more are refused",
  default: 10_000,
  min: 1,
  max: 1_000_000,
});

/** `client` and `test --tls`: connect with TLS. */
export const clientTls = switchOption({
  name: "tls",
  help: "connect with TLS; the server's certificate must be for HOST and signed by a trusted CA",
});

/** `client` and `test --ca`: a CA to trust. */
export const clientCa = stringOption({
  name: "ca",
  arg: "file",
  help: "trust the CA certificates of this PEM file besides the default roots (implies --tls)",
});

/** `client` and `test --auth-token-file`: the token sent. */
export const clientAuthTokenFile = stringOption({
  name: "auth-token-file",
  arg: "file",
  help: "authenticate with the first token of this file (proxy.auth, before anything else)",
});
