/**
 * Secret tokens read from a file, one per line, and checked in constant
 * time. Several may be valid at once, so a token is rotated by adding the
 * new one, reloading, moving clients over, then removing the old one.
 *
 * @module
 */

import { ProxyError } from "../protocol/errors.ts";

/** Code of the error thrown when a token file cannot be used. */
export const TOKEN_FILE_ERROR = "TOKEN_FILE";

/**
 * Parses a token file's text: one token per line; blank lines and lines
 * starting with `#` are skipped; surrounding spaces are not part of a token.
 */
export function parseTokens(text: string): string[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
}

async function digest(token: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", token as Uint8Array<ArrayBuffer>));
}

// Equal-length digests compared without an early exit: the time taken does
// not tell how much of a guess was right.
function sameDigest(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ (b[i] ?? 0);
  return diff === 0;
}

/** The valid tokens (as digests: the tokens themselves are not kept). */
export class TokenSet {
  #digests: Uint8Array[] = [];

  /** True when no token is set. */
  get empty(): boolean {
    return this.#digests.length === 0;
  }

  /** Replaces the tokens. */
  async set(tokens: readonly (string | Uint8Array)[]): Promise<void> {
    const enc = new TextEncoder();
    this.#digests = await Promise.all(
      tokens.map((t) => digest(typeof t === "string" ? enc.encode(t) : t)),
    );
  }

  /**
   * Reads the tokens from a file (see {@linkcode parseTokens}).
   *
   * @returns How many were read.
   * @throws {ProxyError} `TOKEN_FILE` when it cannot be read or holds no token;
   * the tokens set before stay.
   */
  async load(path: string): Promise<number> {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (err) {
      throw new ProxyError(
        TOKEN_FILE_ERROR,
        `Cannot read token file ${path}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const tokens = parseTokens(text);
    if (tokens.length === 0) {
      throw new ProxyError(TOKEN_FILE_ERROR, `Token file ${path} holds no token`);
    }
    await this.set(tokens);
    return tokens.length;
  }

  /** True when `token` is one of the set (constant time in the token's content). */
  async verify(token: string | Uint8Array): Promise<boolean> {
    const d = await digest(typeof token === "string" ? new TextEncoder().encode(token) : token);
    let found = false;
    // Every digest is compared, found or not.
    for (const known of this.#digests) found = sameDigest(known, d) || found;
    return found;
  }
}
