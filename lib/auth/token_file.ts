/**
 * Token files: one token a line; blank lines and lines starting with `#` are
 * ignored, and so is whitespace around a token. Several tokens may be valid
 * at once, so a new one can be rolled out before the old one is removed.
 *
 * @module
 */

import { OptionError } from "../options/option.ts";

/**
 * The tokens of a token file's text, in order, without duplicates.
 *
 * @param text The file's content.
 * @returns The tokens (possibly none).
 *
 * @example Usage
 * ```ts
 * import { parseTokenFile } from "./token_file.ts";
 * console.log(parseTokenFile("# rotated 2024-05\nnew-token\n\n  old-token \n")); // ["new-token", "old-token"]
 * ```
 */
export function parseTokenFile(text: string): string[] {
  const tokens = new Set<string>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line !== "" && !line.startsWith("#")) tokens.add(line);
  }
  return [...tokens];
}

/**
 * Reads a token file.
 *
 * @param path The file.
 * @param flag The flag that named it, for messages. @default {"--auth-token-file"}
 * @returns Its tokens, at least one.
 * @throws {OptionError} When the file cannot be read or holds no token (the message names it).
 */
export async function readTokenFile(
  path: string,
  flag = "--auth-token-file",
): Promise<string[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new OptionError(flag, `cannot read ${path}: ${(err as Error).message}`);
  }
  const tokens = parseTokenFile(text);
  if (tokens.length === 0) {
    throw new OptionError(
      flag,
      `${path} holds no token (only blank lines and # comments); put one token per line`,
    );
  }
  return tokens;
}
