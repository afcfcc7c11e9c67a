/**
 * `proxy`: a process-isolating MessagePack-RPC proxy, as a library.
 *
 * - Run a proxy: {@linkcode runProxy} (what `proxy serve` runs), with every
 *   option of `proxy serve` ({@linkcode ServeSettings}).
 * - Serve methods (`./backend`): {@linkcode runBackend}, {@linkcode BackendServer},
 *   handler modules ({@linkcode loadHandlerModule}).
 * - Call them (`./client`, Deno and Node): {@linkcode RpcClient}, and
 *   {@linkcode LegacyClient} for the original C++ proxy's protocol.
 * - Errors: {@linkcode ErrorCode}, {@linkcode ProxyError}, {@linkcode RemoteError},
 *   {@linkcode OptionError}.
 * - The protocol codec (`./protocol`, pure, no I/O): {@linkcode encodeValue},
 *   {@linkcode decodeValue}, {@linkcode encodeRequest}, {@linkcode decodeMessage},
 *   {@linkcode FrameDecoder}, and the values MessagePack has and JavaScript
 *   does not ({@linkcode Float}, {@linkcode Timestamp}, {@linkcode Ext},
 *   {@linkcode RawString}).
 *
 * Each sub-path imports only what it needs: `./client`, `./backend`,
 * `./protocol`.
 *
 * @example A proxy in front of a backend, and a client
 * ```ts
 * import assert from "node:assert/strict";
 * import { BackendServer, formatAddress, RpcClient, runProxy } from "./mod.ts";
 *
 * const backend = new BackendServer({
 *   address: { transport: "tcp", hostname: "127.0.0.1", port: 0 },
 *   methods: { upper: (s) => String(s).toUpperCase() },
 * });
 * const upstream = `tcp:${formatAddress(await backend.listen())}`;
 *
 * const stop = new AbortController();
 * const listening = Promise.withResolvers<string>();
 * const proxy = runProxy({
 *   port: 0,
 *   workers: 0, // no local workers: only the upstream
 *   upstream: [upstream],
 *   signal: stop.signal,
 *   onListening: listening.resolve,
 * });
 *
 * const client = await RpcClient.connect(await listening.promise);
 * assert.equal(await client.call("upper", ["hello"]), "HELLO");
 * client.close();
 * stop.abort();
 * await proxy;
 * await backend.close();
 * ```
 *
 * @module
 */

export * from "./client.ts";
export * from "./backend.ts";
export * from "./protocol.ts";
export { runProxy, type RunProxyOptions } from "./lib/proxy/run_proxy.ts";
export type { ServeSettings } from "./lib/options/serve_options.ts";
export type { WorkerPermissionSettings } from "./lib/options/worker_permission_options.ts";
export type { Grant } from "./lib/options/option.ts";
export type { PoolMode } from "./lib/dispatch/supervisor.ts";
export type { ReadyCheck } from "./lib/dispatch/worker.ts";
export { BALANCE_STRATEGIES, type BalanceStrategy } from "./lib/dispatch/balancers/balancer.ts";
export type { HealthCheck } from "./lib/dispatch/upstream.ts";
export { OptionError } from "./lib/options/option.ts";
export {
  closeLogging,
  configureLogging,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type LoggingOptions,
  type LogLevel,
} from "./lib/log.ts";
