/**
 * Turning command-line words and typed lines into calls.
 *
 * @module
 */

import { Ext, Float, RawString, Timestamp } from "../protocol/values.ts";

// JSON.rawJSON (ES2025) writes number text as it is; not in TypeScript's lib yet.
const rawJSON = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;

/**
 * Parses one argument: as JSON when it is valid JSON, else as a string.
 * Numbers keep what their text says: an integer beyond 2^53 is a `bigint`
 * (sent as int64/uint64, exactly), and a whole number written with a
 * decimal point is a float (`1.0` is sent as a float, `1` as an integer).
 *
 * @example Usage
 * ```ts
 * import { parseArg } from "./call_line.ts";
 * console.log(parseArg("42"), parseArg("hello"), parseArg('{"a":1}')); // 42 hello { a: 1 }
 * console.log(parseArg("18446744073709551615")); // 18446744073709551615n
 * ```
 */
export function parseArg(word: string): unknown {
  try {
    return JSON.parse(word, exactNumbers);
  } catch {
    return word;
  }
}

// JSON.parse reviver: the number's own text decides its MessagePack type.
function exactNumbers(_key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value !== "number" || context?.source === undefined) return value;
  const source = context.source;
  if (/^-?\d+$/.test(source)) return Number.isSafeInteger(value) ? value : BigInt(source);
  // `1.0` says float; a whole number in exponent form (`-1.5e3`) stays a number.
  return Number.isInteger(value) && /^-?\d+\.\d+$/.test(source) ? new Float(value) : value;
}

/**
 * Splits a line into words: whitespace separates, but a JSON string, object
 * or array stays one word even with spaces inside.
 *
 * @throws {SyntaxError} On an unterminated string or bracket.
 */
export function splitLine(line: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && /\s/.test(line[i]!)) i++;
    if (i >= line.length) break;
    const start = i;
    let depth = 0;
    let inString = false;
    for (; i < line.length; i++) {
      const c = line[i]!;
      if (inString) {
        if (c === "\\") i++;
        else if (c === '"') {
          inString = false;
          if (depth === 0) {
            i++;
            break;
          }
        }
      } else if (c === '"') inString = true;
      else if (c === "{" || c === "[") depth++;
      else if ((c === "}" || c === "]") && depth > 0) {
        depth--;
        if (depth === 0) {
          i++;
          break;
        }
      } else if (depth === 0 && /\s/.test(c)) break;
    }
    if (inString || depth > 0) {
      throw new SyntaxError(`Cannot parse line: unterminated ${inString ? "string" : "bracket"}`);
    }
    words.push(line.slice(start, i));
  }
  return words;
}

/** A call read from a line: its method and parsed params. */
export interface ParsedCall {
  method: string;
  params: unknown[];
}

/**
 * Parses `method arg arg ...`; returns null for a blank line.
 *
 * @throws {SyntaxError} On an unterminated string or bracket.
 */
export function parseCallLine(line: string): ParsedCall | null {
  const [method, ...args] = splitLine(line);
  if (method === undefined) return null;
  return { method, params: args.map(parseArg) };
}

/**
 * Formats a result as JSON for printing, losing nothing JSON can show: a
 * `bigint` prints all its digits, a whole float keeps its `.0`, binary is an
 * array of bytes, a timestamp `{ "seconds", "nanoseconds" }`, another
 * extension `{ "ext", "data" }`, a map with keys that are not strings an
 * array of `[key, value]` pairs.
 *
 * @example Usage
 * ```ts
 * import { formatResult } from "./call_line.ts";
 * import { Float } from "../protocol/values.ts";
 * console.log(formatResult([2n ** 64n - 1n, new Float(1), new Uint8Array([1])])); // [18446744073709551615,1.0,[1]]
 * ```
 */
export function formatResult(value: unknown): string {
  return JSON.stringify(value, function (this: unknown, key: string, v: unknown) {
    // toJSON has run already: look at the value as it was.
    const x = (this as Record<string, unknown>)[key];
    if (typeof x === "bigint") return rawJSON(x.toString());
    if (x instanceof Float) return Number.isFinite(x.value) ? rawJSON(x.toString()) : null;
    if (x instanceof Uint8Array) return Array.from(x);
    if (x instanceof Map) {
      const keys = [...x.keys()];
      return keys.every((k) => typeof k === "string") ? Object.fromEntries(x) : [...x.entries()];
    }
    if (x instanceof Timestamp || x instanceof Ext || x instanceof RawString) return x.toJSON();
    return v;
  }) ?? "null";
}
