/**
 * A handler module for the built-in workers: each exported function becomes a
 * method of the same name, called with the request's params as arguments.
 *
 * ```sh
 * proxy serve --workers 4 --handler examples/handler.ts
 * proxy client 127.0.0.1 8080 add 2 40              # 42
 * proxy client 127.0.0.1 8080 wordCount '"a b a"'   # {"a":2,"b":1}
 * ```
 *
 * What a method returns (or its promise resolves to) is the result, sent as
 * MessagePack exactly (a `bigint` as a 64-bit integer, a `Map` with any keys,
 * a `Uint8Array` as bin, a `Date` as a timestamp). What it throws is answered
 * `HANDLER_ERROR` with the error's message; a handler may throw the program's
 * `ProxyError` (from `backend.ts`, or `proxy/protocol` in the npm package) to
 * choose the code.
 *
 * @module
 */

/** Adds two numbers, or two bigints. */
export function add(a: number | bigint, b: number | bigint): number | bigint {
  if (typeof a === "bigint" || typeof b === "bigint") return BigInt(a) + BigInt(b);
  return a + b;
}

/** Counts each word of a text. */
export function wordCount(text: string): Record<string, number> {
  if (typeof text !== "string") throw new TypeError("Cannot count words: text must be a string");
  const counts: Record<string, number> = {};
  for (const word of text.split(/\s+/).filter((w) => w !== "")) {
    counts[word] = (counts[word] ?? 0) + 1;
  }
  return counts;
}

/** Async: answers after `ms` milliseconds (at most 10 s), with the time it waited. */
export async function wait(ms: number): Promise<{ waited_ms: number }> {
  if (typeof ms !== "number" || !(ms >= 0 && ms <= 10_000)) {
    throw new RangeError("Cannot wait: ms must be a number from 0 to 10000");
  }
  const start = performance.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  return { waited_ms: Math.round(performance.now() - start) };
}

/** Which worker process answered: requests are spread over the workers. */
export function whoami(): { pid: number } {
  return { pid: Deno.pid };
}
