/**
 * The ping-pong loop of `proxy client --repeat N` / `--loop`, as in the
 * original C++ client: one call at a time, each sent when the last returns.
 *
 * @module
 */

import type { RpcClient } from "./rpc_client.ts";

/** Options of {@linkcode repeatCalls}. */
export interface RepeatOptions {
  /** The method to call. */
  method: string;
  /** Its params. */
  params: unknown[];
  /** How many calls; `Infinity` runs until `signal` aborts. */
  count: number;
  /** Per-call timeout in ms; 0 waits forever. @default {0} */
  timeout?: number;
  /** Stops the loop (the summary still comes back). */
  signal?: AbortSignal;
  /** Called with each result. */
  onResult?: (result: unknown, index: number) => void;
}

/** What {@linkcode repeatCalls} did. */
export interface RepeatSummary {
  /** Calls that succeeded. */
  ok: number;
  /** Calls answered with an error. */
  failed: number;
  /** Wall time in seconds. */
  seconds: number;
  /** Calls per second. */
  rate: number;
  /** The first error, if any. */
  firstError: unknown;
}

/**
 * Calls `method` repeatedly, one after the other.
 */
export async function repeatCalls(
  client: RpcClient,
  options: RepeatOptions,
): Promise<RepeatSummary> {
  const start = performance.now();
  let ok = 0;
  let failed = 0;
  let firstError: unknown = undefined;
  for (let i = 0; i < options.count && !options.signal?.aborted && !client.closed; i++) {
    try {
      const result = await client.call(options.method, options.params, {
        timeout: options.timeout ?? 0,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      ok++;
      options.onResult?.(result, i);
    } catch (err) {
      if (options.signal?.aborted) break;
      failed++;
      firstError ??= err;
    }
  }
  const seconds = (performance.now() - start) / 1000;
  return { ok, failed, seconds, rate: seconds > 0 ? (ok + failed) / seconds : 0, firstError };
}
