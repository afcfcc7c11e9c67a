/**
 * A mix of requests for `proxy test --mix`: besides the main request
 * (`--method` with its payload or params), some share of the requests call
 * other methods, e.g. 5 % `spin(5000)` among echoes, so that slow requests
 * hold up the fast ones queued behind them as in real traffic.
 *
 * @module
 */

/** One kind of request in the mix. */
export interface MixEntry {
  /** The method called. */
  method: string;
  /** Its params (answers are not compared). */
  params: unknown[];
  /** The share of all requests, a fraction above 0 and at most 1. */
  share: number;
}

/**
 * Parses `METHOD:PARAMS:SHARE%`, e.g. `spin:[5000]:5%`: PARAMS is a JSON
 * array (it may contain colons), SHARE a percentage above 0 and at most 100.
 *
 * @param text The flag's value.
 * @returns The entry.
 * @throws {SyntaxError} When the text does not have that form.
 *
 * @example Usage
 * ```ts
 * import { parseMixEntry } from "./request_mix.ts";
 * console.log(parseMixEntry("spin:[5000]:5%")); // { method: "spin", params: [5000], share: 0.05 }
 * ```
 */
export function parseMixEntry(text: string): MixEntry {
  const first = text.indexOf(":");
  const last = text.lastIndexOf(":");
  const fail = (why: string): never => {
    throw new SyntaxError(
      `Cannot parse mix entry "${text}": ${why} (expected METHOD:PARAMS:SHARE%, e.g. spin:[5000]:5%)`,
    );
  };
  if (first <= 0 || last === first) fail("missing a part");
  const method = text.slice(0, first);
  let params: unknown;
  try {
    params = JSON.parse(text.slice(first + 1, last));
  } catch {
    fail("PARAMS is not JSON");
  }
  if (!Array.isArray(params)) fail("PARAMS is not a JSON array");
  const pct = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(text.slice(last + 1));
  if (!pct) fail("SHARE is not a percentage such as 5%");
  const share = Number(pct![1]) / 100;
  if (!(share > 0 && share <= 1)) fail("SHARE must be above 0% and at most 100%");
  return { method, params: params as unknown[], share };
}

/**
 * Checks a mix against the main request: methods distinct (each method's
 * latencies are reported apart), shares adding up to at most 100 %.
 *
 * @param mix The entries.
 * @param mainMethod The main request's method, which gets the remaining share.
 * @returns The main request's share, 0 to 1.
 * @throws {RangeError} When the shares add up to more than 100 % or a method repeats.
 */
export function mainShare(mix: readonly MixEntry[], mainMethod: string): number {
  const seen = new Set([mainMethod]);
  let total = 0;
  for (const entry of mix) {
    if (seen.has(entry.method)) {
      throw new RangeError(`Cannot mix requests: method ${entry.method} given twice`);
    }
    seen.add(entry.method);
    total += entry.share;
  }
  // A little slack for shares such as 33.3% given in decimals.
  if (total > 1 + 1e-9) {
    throw new RangeError(
      `Cannot mix requests: the shares add up to ${+(total * 100).toFixed(3)}%, above 100%`,
    );
  }
  return Math.max(0, 1 - total);
}
