/**
 * Logging through LogTape, to stderr. Library code only calls
 * {@linkcode getLogger}; the CLI configures sinks once at start.
 *
 * @module
 */

import {
  configure,
  getLogger as logtapeLogger,
  getTextFormatter,
  type Logger,
  reset,
} from "@logtape/logtape";

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

/**
 * A logger in the `proxy` category tree.
 *
 * @param name Sub-category, e.g. `["pool"]`.
 */
export function getLogger(name: string[]): Logger {
  return logtapeLogger(["proxy", ...name]);
}

/**
 * Sends `proxy` logs at `level` and above to stderr. Calling it again
 * replaces the previous set-up.
 *
 * @param level The least severe level shown. @default {"info"}
 *
 * @example Only warnings and worse
 * ```ts
 * import { configureLogging } from "./log.ts";
 * await configureLogging("warning");
 * ```
 */
export async function configureLogging(level: LogLevel = "info"): Promise<void> {
  const encoder = new TextEncoder();
  const format = getTextFormatter({ timestamp: "date-time-timezone" });
  await reset();
  await configure({
    reset: true,
    sinks: {
      stderr: (record) => {
        try {
          Deno.stderr.writeSync(encoder.encode(format(record)));
        } catch {
          // stderr closed: nothing useful to do
        }
      },
    },
    loggers: [
      { category: ["proxy"], lowestLevel: level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}
