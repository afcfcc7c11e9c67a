/**
 * `proxy test` as a whole: start a proxy unless given a target, load it
 * (killing workers with `--chaos`), stop what was started, and report.
 *
 * @module
 */

import { type Address, formatAddress, parseAddress } from "../net/address.ts";
import type { TlsClientFields } from "../net/tls.ts";
import { openConnection } from "../client/open_connection.ts";
import type { Runtime } from "../process/self_command.ts";
import { LiveLine } from "./live_line.ts";
import { LoadGenerator } from "./load_generator.ts";
import { type ServerProcess, startProxy } from "./server_process.ts";
import { buildReport, type LoadReport, type ReportExtras } from "./report.ts";
import type { MixEntry } from "./request_mix.ts";
import { WorkerKiller } from "./worker_killer.ts";

/** Options of {@linkcode runLoadTest}. */
export interface LoadTestOptions extends TlsClientFields {
  /** The server to load; when absent a proxy is started for the test. */
  target?: Address;
  /** Workers of the proxy started. @default {navigator.hardwareConcurrency} */
  workers?: number;
  /** More `serve` flags for the proxy started. */
  proxyArgs?: string[];
  /** Milliseconds of measured load. */
  durationMs: number;
  /** Milliseconds of load before measuring. @default {0} */
  warmupMs?: number;
  /** Milliseconds to wait for the last answers. @default {5000} */
  graceMs?: number;
  /** @default {16} */
  connections?: number;
  /** Requests in flight per connection. @default {1} */
  pipeline?: number;
  /** @default {"echo"} */
  method?: string;
  /** Explicit params (no payload check). */
  params?: unknown[];
  /** Random payload size in bytes. @default {64} */
  payloadBytes?: number;
  /** Requests per second, open loop. */
  rate?: number;
  /** Other requests mixed in, each with its share (see {@linkcode MixEntry}). */
  mix?: MixEntry[];
  /** Milliseconds between worker kills; absent = no chaos. */
  chaosMs?: number;
  /** Error codes provoked on purpose, not held against the run. */
  expectedErrors?: string[];
  /** Largest answer accepted. */
  maxMessageSize?: number;
  /** Deepest nesting decoded in answers. */
  maxDepth?: number;
  /**
   * A file to write the measured latencies to, as HdrHistogram's
   * percentile-distribution text in milliseconds (see
   * `LatencyHistogram.percentileDistribution`).
   */
  hdrOut?: string;
  /**
   * Authenticate each connection with this token (`proxy.auth`) before its
   * load; `tls`, `caCerts` and `serverName` say how to reach the target.
   */
  token?: string;
  /** Stops the load early (the report still comes). */
  signal?: AbortSignal;
  /** How to re-invoke this program for the proxy. @default {currentRuntime()} */
  runtime?: Runtime;
  /** When given, a live progress line is written with it while loading. */
  live?: (text: string) => void;
}

/**
 * Runs a load test and returns its report. Everything it started (proxy,
 * workers, connections, timers) is ended before it returns or throws.
 *
 * @throws {ProxyError} `CONNECT_FAILED` when the target cannot be reached;
 * `CHAOS_UNSUPPORTED` when `--chaos` cannot work on the target.
 * @throws {Error} When the proxy cannot be started.
 * @throws {Deno.errors.NotFound} When `hdrOut`'s directory does not exist.
 */
export async function runLoadTest(options: LoadTestOptions): Promise<LoadReport> {
  let proxy: ServerProcess | null = null;
  let killer: WorkerKiller | null = null;
  let live: LiveLine | null = null;
  const extras: ReportExtras = {};
  const workers = options.workers ?? (navigator.hardwareConcurrency || 1);
  let stopped = false;
  try {
    let target = options.target;
    if (target === undefined) {
      // Workers killed on purpose every few hundred ms are no crash loop.
      const chaos = options.chaosMs === undefined ? [] : ["--crash-loop-threshold", "1000000"];
      proxy = await startProxy({
        workers,
        args: [...chaos, ...(options.proxyArgs ?? [])],
        ...(options.runtime ? { runtime: options.runtime } : {}),
      });
      target = parseAddress(proxy.address);
    }
    // TLS and a token, when the target asks for them: the handshakes happen
    // as connections open, before the load starts.
    const { tls, caCerts, serverName, token } = options;
    const secure = {
      ...(tls ? { tls } : {}),
      ...(caCerts ? { caCerts } : {}),
      ...(serverName ? { serverName } : {}),
      ...(token !== undefined ? { token } : {}),
    };
    const connect = tls || token !== undefined
      ? (a: Address) => openConnection(a, { ...secure, timeout: 10_000 })
      : undefined;
    if (options.chaosMs !== undefined) {
      killer = await WorkerKiller.connect({
        address: target,
        intervalMs: options.chaosMs,
        client: secure,
      });
    }
    const generator = new LoadGenerator({
      address: target,
      durationMs: options.durationMs,
      ...(connect ? { connect } : {}),
      ...pick(options, [
        "warmupMs",
        "graceMs",
        "connections",
        "pipeline",
        "method",
        "params",
        "payloadBytes",
        "rate",
        "mix",
        "maxMessageSize",
        "maxDepth",
        "signal",
      ]),
    });
    if (options.live) {
      live = new LiveLine({
        source: generator,
        totalMs: (options.warmupMs ?? 0) + options.durationMs,
        write: options.live,
      });
    }
    const running = generator.run();
    live?.start();
    killer?.start();
    void generator.sendingEnded.then(() => killer?.stop());
    const result = await running;
    live?.stop();
    if (options.hdrOut !== undefined) {
      await Deno.writeTextFile(options.hdrOut, result.histogram.percentileDistribution());
    }
    if (killer) {
      await killer.close();
      extras.chaos = {
        crashes: killer.crashes,
        skipped: killer.skipped,
        lastError: killer.lastError,
      };
    }
    if (proxy) {
      const exit = await proxy.stop();
      stopped = true;
      extras.proxyExit = { code: exit.code, killed: exit.killed };
    }
    return buildReport(
      {
        target: formatAddress(target),
        selfStarted: proxy !== null,
        workers: proxy ? workers : null,
        method: options.method ?? "echo",
        payloadBytes: options.params === undefined ? options.payloadBytes ?? 64 : null,
        connections: options.connections ?? 16,
        pipeline: options.pipeline ?? 1,
        rate: options.rate ?? null,
        warmupMs: options.warmupMs ?? 0,
        chaosMs: options.chaosMs ?? null,
        expectedErrors: options.expectedErrors ?? [],
        ...(options.mix ? { mix: options.mix } : {}),
      },
      result,
      extras,
    );
  } finally {
    live?.stop();
    await killer?.close();
    if (proxy && !stopped) await proxy.stop();
  }
}

function pick<T extends object, K extends keyof T>(obj: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}
