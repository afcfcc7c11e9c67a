/**
 * A worker's output lines in the proxy's log, tagged with the worker's id
 * and pid. A built-in worker logs in the proxy's format: its JSON lines are
 * parsed and logged again as the same records with the tags added (not as
 * JSON inside a message); any other line (text, a foreign worker's output)
 * becomes the message of an info record in `proxy·worker`. At most
 * `--worker-log-rate` lines per worker per second are logged; the rest are
 * counted and the count is logged.
 *
 * @module
 */

import { getLogger as logtapeLogger, type LogLevel } from "@logtape/logtape";
import { getLogger, LOG_LEVELS, type WorkerTags } from "../log.ts";
import { LineRateLimit } from "../process/line_rate_limit.ts";

/** A worker's line as a log record. */
export interface WorkerRecord {
  /** Its level: the record's own, else info. */
  level: LogLevel;
  /** Its message. */
  message: string;
  /** When the worker logged it (ms since epoch), when the line says. */
  timestamp: number | undefined;
  /** The worker's category (`["proxy", "backend"]`), when the line says. */
  category: string[] | undefined;
  /** Its properties, when the line has any. */
  properties: Record<string, unknown>;
}

// pino and bunyan write levels as numbers.
const NUMERIC_LEVELS: Record<number, LogLevel> = {
  10: "trace",
  20: "debug",
  30: "info",
  40: "warning",
  50: "error",
  60: "fatal",
};

function levelOf(v: unknown): LogLevel | undefined {
  if (typeof v === "number") return NUMERIC_LEVELS[v];
  if (typeof v !== "string") return undefined;
  const l = v.toLowerCase();
  if (l === "warn") return "warning";
  return (LOG_LEVELS as readonly string[]).includes(l) ? l as LogLevel : undefined;
}

function timeOf(v: unknown): number | undefined {
  const t = typeof v === "string" ? Date.parse(v) : typeof v === "number" ? v : NaN;
  return Number.isFinite(t) ? t : undefined;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/**
 * Reads one line of a worker's output: a JSON object with a `message` (or
 * `msg`) is a record (LogTape's JSON lines, and most JSON loggers'); anything
 * else is the message of an info record.
 *
 * @example Usage
 * ```ts
 * import { parseWorkerLine } from "./worker_output.ts";
 * const line = '{"@timestamp":"2026-01-02T03:04:05.000Z","level":"WARN","message":"hi",' +
 *   '"logger":"proxy.backend","properties":{"n":1}}';
 * console.log(parseWorkerLine(line).level, parseWorkerLine("plain text").message); // warning plain text
 * ```
 */
export function parseWorkerLine(text: string): WorkerRecord {
  const plain: WorkerRecord = {
    level: "info",
    message: text,
    timestamp: undefined,
    category: undefined,
    properties: {},
  };
  if (!text.startsWith("{")) return plain;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return plain;
  }
  if (!isPlainObject(v)) return plain;
  const { "@timestamp": at, timestamp, time, level, message, msg, logger, properties, ...rest } = v;
  const said = typeof message === "string" ? message : typeof msg === "string" ? msg : undefined;
  if (said === undefined) return plain;
  return {
    level: levelOf(level) ?? "info",
    message: said,
    timestamp: timeOf(at ?? timestamp ?? time),
    category: typeof logger === "string" && logger !== "" ? logger.split(".") : undefined,
    properties: { ...rest, ...(isPlainObject(properties) ? properties : {}) },
  };
}

/** Distinct worker categories kept as they are; others log as `proxy·worker`. */
const MAX_CATEGORIES = 32;
const categories = new Set<string>();

// A worker's own category under `proxy` is kept (a collector can tell the
// backend's records apart), but only a few distinct ones: each costs a logger
// for the process's life, and a worker may print anything.
function categoryOf(record: WorkerRecord): string[] {
  const c = record.category;
  if (c === undefined || c[0] !== "proxy" || c.length > 4) return ["proxy", "worker"];
  const key = c.join(".");
  if (categories.has(key)) return c;
  if (categories.size >= MAX_CATEGORIES) return ["proxy", "worker"];
  categories.add(key);
  return c;
}

/** Options of {@linkcode WorkerOutput}. */
export interface WorkerOutputOptions {
  /** The worker's number. */
  workerId: number;
  /** Its pid, once known. */
  pid: () => number | null;
  /** Lines logged per second; 0 = all. */
  rate: number;
  /** Milliseconds, monotonic. @default {performance.now} */
  clock?: () => number;
}

/** The output of one worker, logged tagged and within its rate. */
export class WorkerOutput {
  readonly #workerId: number;
  readonly #pid: () => number | null;
  readonly #limit: LineRateLimit;
  readonly #log = getLogger(["worker"]);

  /** @param options Whose output, and how much of it to log. */
  constructor(options: WorkerOutputOptions) {
    this.#workerId = options.workerId;
    this.#pid = options.pid;
    this.#limit = new LineRateLimit({
      limit: options.rate,
      ...(options.clock ? { clock: options.clock } : {}),
      onDropped: (dropped) =>
        this.#log.warn(
          "Dropped {dropped} lines of output (more than --worker-log-rate {rate} a second)",
          { ...this.#tags(), dropped, rate: options.rate },
        ),
    });
  }

  #tags(): WorkerTags {
    return { worker_id: this.#workerId, pid: this.#pid() };
  }

  /** Logs one line of its output, unless over the rate. */
  write(line: string): void {
    // Checked before parsing: a flood costs a counter, not a JSON parse per line.
    if (!this.#limit.admit()) return;
    const record = parseWorkerLine(line);
    // emit(): the text is no message template, `{braces}` in it stay as they are.
    logtapeLogger(categoryOf(record)).emit({
      level: record.level,
      timestamp: record.timestamp ?? Date.now(),
      message: [record.message],
      rawMessage: record.message,
      properties: { ...record.properties, ...this.#tags() },
    });
  }

  /** Logs how many lines were dropped, if any (when the worker has exited). Idempotent. */
  close(): void {
    this.#limit.close();
  }
}
