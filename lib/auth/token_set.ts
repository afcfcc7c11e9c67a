/**
 * The tokens a proxy accepts (`--auth-token-file`), checked in constant
 * time, and read again from their file on demand (SIGHUP) for rotation.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { getLogger } from "../log.ts";
import { readTokenFile } from "./token_file.ts";

/** What a proxy needs to check a client's token. */
export interface TokenVerifier {
  /** True when `token` is one of the tokens accepted. */
  verify(token: Uint8Array): boolean;
}

const encoder = new TextEncoder();
const log = getLogger(["auth"]);

function sha256(bytes: Uint8Array): Uint8Array {
  return createHash("sha256").update(bytes).digest();
}

/**
 * Compares two byte arrays in time that depends only on their lengths, not
 * on where they differ.
 *
 * @returns True when both hold the same bytes.
 *
 * @example Usage
 * ```ts
 * import { constantTimeEqual } from "./token_set.ts";
 * console.log(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2]))); // true
 * ```
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/**
 * A set of accepted tokens. Only their SHA-256 digests are kept, and a
 * candidate's digest is compared with every one of them, so neither the
 * time taken nor the lengths compared tell an attacker how close a guess was.
 *
 * @example Usage
 * ```ts
 * import { TokenSet } from "./token_set.ts";
 * const tokens = new TokenSet(["new-token", "old-token"]);
 * console.log(tokens.verify(new TextEncoder().encode("old-token"))); // true
 * ```
 */
export class TokenSet implements TokenVerifier {
  #digests: Uint8Array[] = [];
  readonly #path: string | undefined;
  readonly #flag: string;

  /**
   * @param tokens The tokens accepted (at least one).
   * @param path The file they came from, read again by {@linkcode TokenSet.reload}.
   * @param flag The flag that named the file, for messages. @default {"--auth-token-file"}
   * @throws {RangeError} When `tokens` is empty.
   */
  constructor(tokens: readonly (string | Uint8Array)[], path?: string, flag = "--auth-token-file") {
    this.#path = path;
    this.#flag = flag;
    this.#replace(tokens);
  }

  /**
   * Reads the tokens of a token file.
   *
   * @param path The file.
   * @param flag The flag that named it, for messages. @default {"--auth-token-file"}
   * @throws {OptionError} When it cannot be read or holds no token.
   */
  static async load(path: string, flag = "--auth-token-file"): Promise<TokenSet> {
    return new TokenSet(await readTokenFile(path, flag), path, flag);
  }

  /** The file the tokens come from, if any. */
  get path(): string | undefined {
    return this.#path;
  }

  /** How many tokens are accepted. */
  get size(): number {
    return this.#digests.length;
  }

  #replace(tokens: readonly (string | Uint8Array)[]): void {
    if (tokens.length === 0) throw new RangeError("Cannot accept tokens: none given");
    this.#digests = tokens.map((t) => sha256(typeof t === "string" ? encoder.encode(t) : t));
  }

  /** True when `token` is one of the tokens accepted. */
  verify(token: Uint8Array): boolean {
    const digest = sha256(token);
    let found = false;
    // Every digest is compared: no early exit on a match either.
    for (const d of this.#digests) found = constantTimeEqual(digest, d) || found;
    return found;
  }

  /**
   * Reads the file again and accepts exactly its tokens from now on
   * (connections already authenticated stay so). A file that cannot be read
   * or holds no token changes nothing: the old tokens stay valid, and the
   * error is logged.
   *
   * @returns True when the tokens were replaced.
   */
  async reload(): Promise<boolean> {
    if (this.#path === undefined) return false;
    try {
      this.#replace(await readTokenFile(this.#path, this.#flag));
    } catch (err) {
      log.error(
        `Cannot reload the tokens of ${this.#flag}, keeping the ${this.size} in use: ${
          (err as Error).message
        }`,
      );
      return false;
    }
    log.info(`Tokens of ${this.#flag} reloaded from ${this.#path}: ${this.size} accepted`);
    return true;
  }
}
