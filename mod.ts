/**
 * `proxy`: a process-isolating MessagePack-RPC proxy, as a library.
 *
 * - Protocol (pure, no I/O): {@linkcode FrameDecoder}, {@linkcode readEnvelope},
 *   {@linkcode encodeRequest}, {@linkcode decodeMessage}, {@linkcode ErrorCode}, and the
 *   legacy CCRPC frame codec.
 * - Client: {@linkcode RpcClient}.
 * - Backend: {@linkcode BackendServer}, {@linkcode runBackend}, {@linkcode builtinMethods},
 *   {@linkcode loadHandlerModule}.
 * - Pool and balancing: {@linkcode WorkerPool}, {@linkcode Worker},
 *   {@linkcode workerCommandLine}, {@linkcode pickLeastInFlight}.
 * - Proxy: {@linkcode ProxyServer}, {@linkcode runProxy}.
 *
 * @example Call a running proxy
 * ```ts ignore
 * import { RpcClient } from "./mod.ts";
 * const client = await RpcClient.connect("127.0.0.1:8080");
 * console.log(await client.call("echo", ["hello"])); // "hello"
 * client.close();
 * ```
 *
 * @module
 */

export * from "./lib/protocol/mod.ts";
export * from "./lib/net/address.ts";
export * from "./lib/net/frame_connection.ts";
export * from "./lib/client/rpc_client.ts";
export * from "./lib/backend/backend_server.ts";
export * from "./lib/backend/methods.ts";
export * from "./lib/backend/run_backend.ts";
export * from "./lib/balancer/mod.ts";
export * from "./lib/pool/call.ts";
export * from "./lib/pool/request_queue.ts";
export * from "./lib/pool/worker.ts";
export * from "./lib/pool/worker_command.ts";
export * from "./lib/pool/worker_process.ts";
export * from "./lib/pool/worker_pool.ts";
export * from "./lib/pool/pool_options.ts";
export * from "./lib/pool/memory.ts";
export * from "./lib/proxy/client_session.ts";
export * from "./lib/proxy/proxy_server.ts";
export * from "./lib/proxy/run_proxy.ts";

export * from "./lib/proxy/legacy_session.ts";
export * from "./lib/backend/legacy_methods.ts";
export * from "./lib/client/legacy_client.ts";
export * from "./lib/loadtest/mod.ts";
export { configureLogging, getLogger, LOG_LEVELS, type LogLevel } from "./lib/log.ts";
