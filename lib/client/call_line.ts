/**
 * Turning command-line words and typed lines into calls.
 *
 * @module
 */

/**
 * Parses one argument: as JSON when it is valid JSON, else as a string.
 *
 * @example Usage
 * ```ts
 * import { parseArg } from "./call_line.ts";
 * console.log(parseArg("42"), parseArg("hello"), parseArg('{"a":1}')); // 42 hello { a: 1 }
 * ```
 */
export function parseArg(word: string): unknown {
  try {
    return JSON.parse(word);
  } catch {
    return word;
  }
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
 * Formats a result as JSON for printing; binary becomes an array of bytes.
 */
export function formatResult(value: unknown): string {
  return JSON.stringify(value, (_key, v) => v instanceof Uint8Array ? Array.from(v) : v) ?? "null";
}
