/**
 * Building commander options from the option tables (`lib/options/`), so
 * flags, defaults and `--help` all come from one place. A value that does not
 * fit its option becomes commander's InvalidArgumentError, a usage error
 * (exit code 2).
 *
 * @module
 */

import { type Command, InvalidArgumentError, Option as CommanderOption } from "commander";
import {
  formatDuration,
  MAX_DURATION_MS,
  type Option,
  OptionError,
  type OptionTable,
  parseDuration,
  parseSize,
  resolveOptions,
} from "../lib/options/option.ts";
import { LOG_OPTIONS, type LogSettings } from "../lib/options/log_options.ts";
import {
  clientAuthTokenFile,
  clientCa,
  clientTls,
  logLevel,
  maxMessageSize,
} from "../lib/options/common_options.ts";
import { readCaCerts } from "../lib/net/tls.ts";
import { readTokenFile } from "../lib/auth/token_file.ts";
import { type Address, parseAddress } from "../lib/net/address.ts";
import { configureLogging } from "../lib/log.ts";

/**
 * Adds one option of a table to a command. Commander keeps no default of its
 * own: an absent flag stays undefined and the library fills it from the same
 * table, so `--help` shows the default the README writes (`10s`, `4MiB`).
 */
export function addOption(cmd: Command, option: Option): Command {
  const flags = option.arg === null
    ? `--${option.name}`
    : option.optionalArg
    ? `--${option.name} [${option.arg}]`
    : `--${option.name} <${option.arg}>`;
  const help = option.defaultText === ""
    ? option.help
    : `${option.help} (default: ${option.defaultText})`;
  const o = new CommanderOption(flags, help);
  if (option.arg !== null) {
    o.argParser((text: string, previous: unknown) => {
      try {
        return option.parse(text, previous);
      } catch (err) {
        // commander prefixes the flag itself.
        if (err instanceof OptionError) {
          throw new InvalidArgumentError(err.message.slice(`--${option.name}: `.length));
        }
        throw err;
      }
    });
  }
  return cmd.addOption(o);
}

/** Adds every option of `table` (but those in `skip`) to a command. */
export function addOptions(cmd: Command, table: OptionTable, skip: string[] = []): Command {
  for (const option of table) if (!skip.includes(option.name)) addOption(cmd, option);
  return cmd;
}

/**
 * Sets logging up from a command's `--log-level`, `--log-format` and
 * `--log-file` (with its rotation), defaults from the option table.
 */
export async function setUpLogging(opts: Partial<LogSettings>): Promise<void> {
  const s = resolveOptions(LOG_OPTIONS, opts) as unknown as LogSettings;
  await configureLogging({
    level: s.logLevel,
    format: s.logFormat,
    ...(s.logFile === undefined
      ? {}
      : { file: { path: s.logFile, maxSize: s.logMaxSize, maxFiles: s.logMaxFiles } }),
  });
}

/** Makes `--name` and `--other` exclusive, as a usage error. */
export function exclusive(cmd: Command, a: string, b: string): void {
  const given = (name: string) => cmd.getOptionValueSource(camel(name)) === "cli";
  if (given(a) && given(b)) {
    throw new InvalidArgumentError(`give either --${a} or --${b}, not both`);
  }
}

function camel(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

// Parsers for flags that are not (yet) in an option table.

/** A parser of an integer flag within [min, max]. */
export function intIn(min: number, max: number = Number.MAX_SAFE_INTEGER): (v: string) => number {
  return (v) => {
    const n = /^-?\d+$/.test(v.trim()) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}, got "${v}"`);
    }
    return n;
  };
}

/**
 * A parser of a duration: `250ms`, `10s`, `2m`, `1h`, or a bare number of
 * milliseconds (or of `bareUnit`), at most setTimeout's limit. Returns milliseconds.
 */
export function duration(bareUnit: "ms" | "s" = "ms"): (v: string) => number {
  return (v) => {
    try {
      const ms = parseDuration(v, bareUnit);
      if (ms > MAX_DURATION_MS) {
        throw new RangeError(
          `expected a duration up to ${formatDuration(MAX_DURATION_MS)}, got "${v}"`,
        );
      }
      return ms;
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

/** Parses a size in bytes: `1048576`, `512k`, `8MiB`, `1g`. */
export function byteSize(v: string): number {
  try {
    const n = parseSize(v);
    if (n < 1) throw new RangeError(`expected a positive size, got "${v}"`);
    return n;
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** Parses `HOST:PORT` or `unix:/path`. */
export function address(v: string): Address {
  try {
    return parseAddress(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** Adds `--max-message-size` to a command. */
export function addMaxMessageSize(cmd: Command): Command {
  return addOption(cmd, maxMessageSize);
}

/** Adds `--log-level` to a command. */
export function addLogLevel(cmd: Command): Command {
  return addOption(cmd, logLevel);
}

/** Adds `--tls`, `--ca` and `--auth-token-file` (how a client reaches a secured proxy). */
export function addClientSecurity(cmd: Command): Command {
  for (const option of [clientTls, clientCa, clientAuthTokenFile]) addOption(cmd, option);
  return cmd;
}

/** What `--tls`, `--ca` and `--auth-token-file` ask for, their files read. */
export interface ClientSecurity {
  tls?: boolean;
  caCerts?: string[];
  token?: string;
}

/**
 * Reads the files of `--ca` and `--auth-token-file`.
 *
 * @throws {OptionError} When a file cannot be read or holds nothing usable.
 */
export async function readClientSecurity(
  opts: { tls?: boolean; ca?: string; authTokenFile?: string },
): Promise<ClientSecurity> {
  const out: ClientSecurity = {};
  if (opts.tls || opts.ca !== undefined) out.tls = true;
  if (opts.ca !== undefined) out.caCerts = await readCaCerts(opts.ca, "--ca");
  if (opts.authTokenFile !== undefined) {
    out.token = (await readTokenFile(opts.authTokenFile))[0]!;
  }
  return out;
}
