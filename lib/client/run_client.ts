/**
 * What `proxy client` does once connected: one call, a ping-pong loop, a
 * script of calls from stdin, or an interactive prompt.
 *
 * @module
 */

import process from "node:process";
import { createInterface } from "node:readline";
import { ProxyError } from "../protocol/mod.ts";
import { formatResult, parseCallLine } from "./call_line.ts";
import { repeatCalls, type RepeatSummary } from "./repeat.ts";
import type { RpcClient } from "./rpc_client.ts";

/** Where the client writes: results to `out`, errors and summaries to `err`. */
export interface ClientOutput {
  out: (line: string) => void;
  err: (line: string) => void;
}

/** Formats an error for a person: `CODE: message`. */
export function describeError(err: unknown): string {
  if (err instanceof ProxyError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

/**
 * Makes one call and prints its result.
 *
 * @returns 0 on a result, 1 on an error answer; connection failures and
 * timeouts are thrown.
 */
export async function callOnce(
  client: RpcClient,
  method: string,
  params: unknown[],
  io: ClientOutput,
  timeout = 0,
): Promise<number> {
  try {
    io.out(formatResult(await client.call(method, params, { timeout })));
    return 0;
  } catch (err) {
    if (isTransportError(err)) throw err;
    io.err(describeError(err));
    return 1;
  }
}

/** True for errors about the connection rather than the call's answer. */
export function isTransportError(err: unknown): boolean {
  return err instanceof ProxyError &&
    (err.code === "CONNECTION_CLOSED" || err.code === "CONNECT_FAILED" ||
      (err.code === "TIMEOUT" && err.name !== "RemoteError"));
}

/** Runs the `--repeat`/`--loop` ping-pong and prints a summary line. */
export async function callRepeatedly(
  client: RpcClient,
  options: {
    method: string;
    params: unknown[];
    count: number;
    timeout: number;
    quiet: boolean;
    signal?: AbortSignal;
  },
  io: ClientOutput,
): Promise<RepeatSummary> {
  const summary = await repeatCalls(client, {
    method: options.method,
    params: options.params,
    count: options.count,
    timeout: options.timeout,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.quiet ? {} : { onResult: (r: unknown) => io.out(formatResult(r)) }),
  });
  io.err(
    `${summary.ok + summary.failed} calls (${summary.failed} failed) in ${
      summary.seconds.toFixed(3)
    } s: ${summary.rate.toFixed(0)} calls/s`,
  );
  if (summary.firstError !== undefined) io.err(`first error: ${describeError(summary.firstError)}`);
  return summary;
}

/**
 * Reads `method arg ...` lines and calls each in turn. With `prompt`, shows
 * a prompt and keeps a history (arrow keys) for the session.
 *
 * @returns 0 when every call succeeded, 1 otherwise.
 */
export async function callLines(
  client: RpcClient,
  options: { prompt: boolean; timeout: number },
  io: ClientOutput,
): Promise<number> {
  const rl = createInterface({
    input: process.stdin,
    ...(options.prompt ? { output: process.stdout, terminal: true, historySize: 1000 } : {}),
  });
  let status = 0;
  if (options.prompt) {
    io.err("Type: method arg ... (args are JSON or plain strings); Ctrl-D quits.");
    rl.setPrompt("proxy> ");
    rl.prompt();
  }
  try {
    for await (const line of rl) {
      try {
        const call = parseCallLine(line);
        if (call) {
          status = Math.max(
            status,
            await callOnce(client, call.method, call.params, io, options.timeout),
          );
        }
      } catch (err) {
        if (isTransportError(err)) throw err;
        io.err(describeError(err));
        status = 1;
      }
      if (options.prompt) rl.prompt();
    }
  } finally {
    rl.close();
  }
  return status;
}
