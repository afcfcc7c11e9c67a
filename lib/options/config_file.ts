/**
 * `proxy serve --config proxy.toml`: the same options as the flags, in a
 * TOML file. Every flag has a key (`--queue-size` is `queue_size`), lists
 * are arrays (`upstream = ["tcp:10.0.0.1:9000", ...]`), per-method timeouts a
 * table (`[method_timeout]`, `echo = "5s"`). Errors name the file, the line
 * and the key.
 *
 * @module
 */

import { parse, TomlError } from "smol-toml";
import { type Option, OptionError, type OptionTable } from "./option.ts";

/** A value in a config file that does not fit (or a file that is not TOML). */
export class ConfigError extends OptionError {
  /**
   * @param where `FILE:LINE: KEY` (or `FILE:LINE` for a syntax error).
   * @param message What is wrong.
   */
  constructor(where: string, message: string) {
    super(where, message);
    this.name = "ConfigError";
  }
}

// The line a key is set on: `key =` at the start of a line (inside `table`
// when given), or a `[key]` / `[key.sub]` header, or a dotted `key.sub =`.
function lineOf(text: string, key: string, table?: string): number {
  const lines = text.split("\n");
  const k = key.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const assignment = new RegExp(`^"?${k}"?\\s*(=|\\.)`);
  const header = new RegExp(`^\\[\\[?\\s*"?${k}"?\\s*(\\]|\\.)`);
  let inTable = table === undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    const h = /^\[\[?\s*([^\]]+?)\s*\]\]?$/.exec(line);
    if (h) {
      if (table === undefined && header.test(line)) return i + 1;
      inTable = h[1] === table;
      continue;
    }
    if (inTable && assignment.test(line)) return i + 1;
  }
  return 0;
}

/**
 * Parses a config file's text against an option table.
 *
 * @param text The TOML.
 * @param file Its name, for messages.
 * @param table The command's options.
 * @returns The values it sets, by option key, each checked.
 * @throws {ConfigError} `FILE:LINE: KEY: what is wrong`.
 *
 * @example Usage
 * ```ts
 * import { parseConfig } from "./config_file.ts";
 * import { SERVE_OPTIONS } from "./serve_options.ts";
 * console.log(parseConfig('queue_size = 64\nqueue_timeout = "2s"\n', "proxy.toml", SERVE_OPTIONS));
 * // { queueSize: 64, queueTimeout: 2000 }
 * ```
 */
export function parseConfig(
  text: string,
  file: string,
  table: OptionTable,
): Record<string, unknown> {
  let doc: Record<string, unknown>;
  try {
    doc = parse(text) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof TomlError) {
      const first = err.message.split("\n")[0]!.replace(/^Invalid TOML document: /, "");
      throw new ConfigError(`${file}:${err.line}`, `not valid TOML: ${first}`);
    }
    throw err;
  }
  const byKey = new Map<string, Option>();
  for (const o of table) if (o.configKey !== null) byKey.set(o.configKey, o);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(doc)) {
    const where = `${file}:${lineOf(text, key)}: ${key}`;
    const option = byKey.get(key);
    if (!option) throw new ConfigError(where, "no such option");
    try {
      out[option.key] = option.check(toPlain(value));
    } catch (err) {
      // A table's entry is named with its own line.
      const message = (err as Error).message.replace(/^--[a-z-]+: /, "");
      if (
        value !== null && typeof value === "object" && !Array.isArray(value) && takesTables(option)
      ) {
        const bad = Object.keys(value).find((k) => {
          try {
            option.check({ [k]: (value as Record<string, unknown>)[k] });
            return false;
          } catch {
            return true;
          }
        });
        if (bad !== undefined) {
          throw new ConfigError(`${file}:${lineOf(text, bad, key)}: ${key}.${bad}`, message);
        }
      }
      throw new ConfigError(where, message);
    }
  }
  return out;
}

// True for an option whose value is a table (`[method_timeout]`).
function takesTables(option: Option): boolean {
  try {
    option.check({});
    return true;
  } catch {
    return false;
  }
}

// smol-toml gives null-prototype objects and bigints for big integers.
function toPlain(value: unknown): unknown {
  if (typeof value === "bigint") return Number(value);
  if (Array.isArray(value)) return value.map(toPlain);
  if (value instanceof Date) return value.toISOString();
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toPlain(v)]));
  }
  return value;
}

/** A config file read: its values, and where each was set. */
export interface ConfigFile {
  /** The values it sets, by option key (see {@linkcode parseConfig}). */
  values: Record<string, unknown>;
  /** `FILE:LINE: KEY` of the option with this key (`queueSize`), for messages. */
  where(key: string): string;
}

/**
 * Reads and parses a config file, keeping where each value was set.
 *
 * @throws {ConfigError} When it cannot be read, is not TOML, or a value does not fit.
 */
export async function readConfigFile(path: string, table: OptionTable): Promise<ConfigFile> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new ConfigError(path, `cannot read: ${(err as Error).message}`);
  }
  const values = parseConfig(text, path, table);
  return {
    values,
    where(key) {
      const configKey = table.find((o) => o.key === key)?.configKey ?? key;
      return `${path}:${lineOf(text, configKey)}: ${configKey}`;
    },
  };
}
