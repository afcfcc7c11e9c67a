/**
 * The logging options of `proxy serve` and `proxy backend`: level, format,
 * file and its rotation, defined once for both; and how much of a worker's
 * output the proxy logs.
 *
 * @module
 */

import { LOG_FORMATS, type LogFormat, type LogLevel } from "../log.ts";
import { logLevel } from "./common_options.ts";
import { choiceOption, intOption, type OptionTable, sizeOption, stringOption } from "./option.ts";

/** `--log-format`: text for people, JSON lines for collectors. */
export const logFormat = choiceOption<LogFormat>({
  name: "log-format",
  help: "pretty: one line of text per record; json: one JSON object per line, for collectors",
  default: "pretty",
  choices: LOG_FORMATS,
});

/** `--log-file`: write logs to a file (rotated by size) instead of stderr. */
export const logFile = stringOption({
  name: "log-file",
  arg: "path",
  help: "write logs to this file instead of stderr, rotated at --log-max-size",
});

/** `--log-max-size`: the size at which the log file is rotated. */
export const logMaxSize = sizeOption({
  name: "log-max-size",
  help: "with --log-file: the file is renamed PATH.1 (PATH.2, ...) before it would grow past this",
  default: 10 * 1024 * 1024,
  min: 1024,
  max: 2 ** 40,
});

/** `--log-max-files`: how many log files are kept in all. */
export const logMaxFiles = intOption({
  name: "log-max-files",
  help: "with --log-file: files kept in all, the current one included (older ones are deleted)",
  default: 5,
  min: 1,
  max: 1000,
});

/** The logging options every server command has, in `--help` order. */
export const LOG_OPTIONS: OptionTable = [logLevel, logFormat, logFile, logMaxSize, logMaxFiles];

/** `serve --worker-log-rate`: lines of output per worker per second that are logged. */
export const workerLogRate = intOption({
  name: "worker-log-rate",
  help:
    "lines of output logged per worker per second; beyond, lines are dropped and counted (0 = no limit)",
  default: 100,
  min: 0,
  max: 1_000_000,
});

/** The resolved values of {@linkcode LOG_OPTIONS}. */
export interface LogSettings {
  /** `--log-level`: the least severe level written. Default: `info`. */
  logLevel: LogLevel;
  /** `--log-format`: `pretty` text or `json` lines. Default: `pretty`. */
  logFormat: LogFormat;
  /** `--log-file`: write here instead of stderr. Default: stderr. */
  logFile: string | undefined;
  /** `--log-max-size`: bytes after which the file is rotated. Default: `10MiB`. */
  logMaxSize: number;
  /** `--log-max-files`: files kept, the current one included. Default: `5`. */
  logMaxFiles: number;
}
