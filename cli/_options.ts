/**
 * Flag value parsers shared by the subcommands. Each throws commander's
 * InvalidArgumentError, which becomes a usage error (exit code 2).
 *
 * @module
 */

import { type Command, InvalidArgumentError, Option } from "commander";
import { type Address, parseAddress } from "../lib/net/address.ts";
import { configureLogging, LOG_LEVELS, type LogLevel } from "../lib/log.ts";

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

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, "": 1 };

/**
 * A parser of a duration: `250ms`, `10s`, `2m`, `1h`, or a bare number of
 * milliseconds (or of `bareUnit`). Returns milliseconds.
 */
export function duration(bareUnit: "ms" | "s" = "ms"): (v: string) => number {
  return (v) => {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
    if (!m) {
      throw new InvalidArgumentError(`expected a duration such as 500ms, 10s or 2m, got "${v}"`);
    }
    const unit = m[2] ?? bareUnit;
    return Math.round(Number(m[1]) * DURATION_UNITS[unit]!);
  };
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
};

/** Parses a size in bytes: `1048576`, `512k`, `8MiB`, `1g`. */
export function byteSize(v: string): number {
  const m = /^(\d+)\s*([a-z]*)$/i.exec(v.trim());
  const mult = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  const n = m && mult ? Number(m[1]) * mult : NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError(`expected a size such as 65536, 512k or 8MiB, got "${v}"`);
  }
  return n;
}

/** Parses `HOST:PORT` or `unix:/path`. */
export function address(v: string): Address {
  try {
    return parseAddress(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** Adds `--log-level` to a command. */
export function addLogLevel(cmd: Command, fallback: LogLevel = "info"): Command {
  return cmd.addOption(
    new Option("--log-level <level>", "least severe log level shown on stderr").choices(LOG_LEVELS)
      .default(fallback),
  );
}

/** Sets logging up from a command's `--log-level`. */
export async function setUpLogging(opts: { logLevel?: string }): Promise<void> {
  await configureLogging((opts.logLevel ?? "info") as LogLevel);
}

/** Adds `--max-message-size` to a command. */
export function addMaxMessageSize(cmd: Command): Command {
  return cmd.option(
    "--max-message-size <bytes>",
    "largest message accepted (e.g. 8MiB)",
    byteSize,
    8 * 1024 * 1024,
  );
}
