/**
 * Token authentication on the wire: a client's first message is the request
 * `proxy.auth` with params `[token]`, the token a str or a bin; the answer is
 * `true`, or the error `UNAUTHENTICATED` (after which the proxy closes).
 *
 * @module
 */

import { RawString } from "./values.ts";

/** The method a client authenticates with. */
export const AUTH_METHOD = "proxy.auth";

const encoder = new TextEncoder();

/**
 * The token in the decoded params of a `proxy.auth` request, as bytes; null
 * when the params are not exactly one str or bin.
 *
 * @param params The request's params, decoded.
 * @returns The token's bytes (a str as UTF-8), or null.
 *
 * @example Usage
 * ```ts
 * import { readAuthToken } from "./auth.ts";
 * console.log(readAuthToken(["s3cret"])?.length); // 6
 * console.log(readAuthToken([1, 2])); // null
 * ```
 */
export function readAuthToken(params: unknown): Uint8Array | null {
  if (!Array.isArray(params) || params.length !== 1) return null;
  const [token] = params;
  if (typeof token === "string") return encoder.encode(token);
  if (token instanceof Uint8Array) return token;
  if (token instanceof RawString) return token.bytes; // a str that is not UTF-8
  return null;
}
