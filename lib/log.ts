/**
 * Logging through LogTape, to stderr or a rotated file, as text or JSON
 * lines. Library code only calls {@linkcode getLogger}; the CLI configures
 * the sink once at start and closes it before exit.
 *
 * @module
 */

import {
  configure,
  getJsonLinesFormatter,
  getLogger as logtapeLogger,
  getTextFormatter,
  type Logger,
  type LogRecord,
  reset,
  type Sink,
  type TextFormatter,
} from "@logtape/logtape";
import { getRotatingFileSink } from "@logtape/file";

/**
 * Log levels accepted by `--log-level`.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { LOG_LEVELS } from "./log.ts";
 * assert.ok(LOG_LEVELS.indexOf("warning") > LOG_LEVELS.indexOf("info"));
 * ```
 */
export const LOG_LEVELS = ["trace", "debug", "info", "warning", "error", "fatal"] as const;

/** One of {@linkcode LOG_LEVELS}. */
export type LogLevel = typeof LOG_LEVELS[number];

/** Log formats accepted by `--log-format`. */
export const LOG_FORMATS = ["pretty", "json"] as const;

/** One of {@linkcode LOG_FORMATS}. */
export type LogFormat = typeof LOG_FORMATS[number];

/** The properties that tag a record with the worker it came from. */
export interface WorkerTags {
  /** The worker's number (its slot: `worker N` in the log and `proxy.stats`). */
  worker_id: number;
  /** Its process id. */
  pid: number | null;
}

/** Where and how logs are written. */
export interface LoggingOptions {
  /** Least severe level written. @default {"info"} */
  level?: LogLevel;
  /** Text lines or JSON lines. @default {"pretty"} */
  format?: LogFormat;
  /** A file rotated by size; absent: stderr. */
  file?: {
    /** Its path; rotated files are PATH.1, PATH.2, ... */
    path: string;
    /** Bytes at which it is rotated. */
    maxSize: number;
    /** Files kept in all, the current one included. */
    maxFiles: number;
  };
}

// Whether the sink configured last is a file.
let toFile = false;

/** What a handler module logs with (see {@linkcode handlerLogger}). */
export interface HandlerLogger {
  /** Logs at debug level; `{name}` in `message` is replaced by `properties.name`. */
  debug(message: string, properties?: Record<string, unknown>): void;
  /** Logs at info level. */
  info(message: string, properties?: Record<string, unknown>): void;
  /** Logs at warning level. */
  warn(message: string, properties?: Record<string, unknown>): void;
  /** Logs at error level. */
  error(message: string, properties?: Record<string, unknown>): void;
}

/**
 * A logger for a handler module: in a worker, its records reach the proxy's
 * log as records (JSON properties kept) tagged with the worker's id and pid.
 * Built-in workers run at `--log-level warning`, so warnings and worse get
 * through.
 *
 * @param name The category under `proxy`. @default {"handler"}
 * @returns The logger.
 *
 * @example In a handler module
 * ```ts
 * import { handlerLogger } from "./log.ts";
 * const log = handlerLogger();
 * export function charge(amount: number) {
 *   if (amount > 1000) log.warn("Large charge: {amount}", { amount });
 *   return amount;
 * }
 * charge(5);
 * ```
 */
export function handlerLogger(name = "handler"): HandlerLogger {
  return getLogger([name]);
}

/**
 * A logger in the `proxy` category tree.
 *
 * @param name Sub-category, e.g. `["pool"]`.
 */
export function getLogger(name: string[]): Logger {
  return logtapeLogger(["proxy", ...name]);
}

/**
 * Sends `proxy` logs at the level and above to stderr or a file. Calling it
 * again replaces the previous set-up (and closes its file).
 *
 * @param options A level, or where and how to write.
 * @throws {Error} When the log file cannot be opened.
 *
 * @example Only warnings and worse
 * ```ts
 * import { configureLogging } from "./log.ts";
 * await configureLogging("warning");
 * ```
 */
export async function configureLogging(options: LogLevel | LoggingOptions = "info"): Promise<void> {
  const o = typeof options === "string" ? { level: options } : options;
  const formatter = o.format === "json" ? getJsonLinesFormatter() : prettyFormatter();
  await reset();
  await configure({
    reset: true,
    sinks: { out: o.file ? fileSink(o.file, formatter) : stderrSink(formatter) },
    loggers: [
      { category: ["proxy"], lowestLevel: o.level ?? "info", sinks: ["out"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["out"] },
    ],
  });
  toFile = o.file !== undefined;
}

/**
 * Writes out and closes the log sink (a file's last lines included); later
 * records go nowhere. Call it before the process exits. Idempotent.
 */
export async function closeLogging(): Promise<void> {
  toFile = false;
  await reset();
}

/** True while logs go to a file (so what goes to stderr alone is not in them). */
export function loggingToFile(): boolean {
  return toFile;
}

/** The tag a pretty line shows before a worker's text: `[worker 3 pid 1234] `. */
export function workerPrefix(record: LogRecord): string {
  const { worker_id: id, pid } = record.properties as Partial<WorkerTags>;
  return typeof id === "number" ? `[worker ${id} pid ${pid ?? "?"}] ` : "";
}

// Today's text format, with a worker's lines tagged in front.
function prettyFormatter(): TextFormatter {
  return getTextFormatter({
    timestamp: "date-time-timezone",
    format: ({ timestamp, level, category, message, record }) =>
      `${timestamp} [${level}] ${category}: ${workerPrefix(record)}${message}`,
  });
}

function stderrSink(formatter: TextFormatter): Sink {
  const encoder = new TextEncoder();
  return (record) => {
    try {
      Deno.stderr.writeSync(encoder.encode(formatter(record)));
    } catch {
      // stderr closed: nothing useful to do
    }
  };
}

function fileSink(file: NonNullable<LoggingOptions["file"]>, formatter: TextFormatter): Sink {
  try {
    return getRotatingFileSink(file.path, {
      formatter,
      maxSize: file.maxSize,
      // LogTape counts the rotated files only.
      maxFiles: file.maxFiles - 1,
      // Written at once: a proxy logs little (nothing per request), and so a
      // crash or SIGKILL loses no line and `tail -f` shows each as it comes.
      bufferSize: 0,
    });
  } catch (err) {
    throw new Error(`Cannot open log file ${file.path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
