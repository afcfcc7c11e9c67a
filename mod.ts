/**
 * `proxy`: a process-isolating MessagePack-RPC proxy, as a library.
 *
 * - Run a proxy: {@linkcode runProxy} (what `proxy serve` runs), with every
 *   option of `proxy serve` (see {@linkcode SERVE_OPTIONS}).
 * - Serve methods: {@linkcode runBackend}, {@linkcode BackendServer}, handler
 *   modules ({@linkcode loadHandlerModule}).
 * - Call them: {@linkcode RpcClient}, and {@linkcode LegacyClient} for the
 *   original C++ proxy's protocol.
 * - Errors: {@linkcode ErrorCode}, {@linkcode ProxyError}, {@linkcode RemoteError}.
 * - The protocol codec (pure, no I/O): {@linkcode encodeValue},
 *   {@linkcode decodeValue}, {@linkcode encodeRequest}, {@linkcode decodeMessage},
 *   {@linkcode FrameDecoder}, and the values MessagePack has and JavaScript
 *   does not ({@linkcode Float}, {@linkcode Timestamp}, {@linkcode Ext},
 *   {@linkcode RawString}).
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
export { type Address, formatAddress, parseAddress } from "./lib/net/address.ts";
export * from "./lib/client/rpc_client.ts";
export * from "./lib/client/legacy_client.ts";
export * from "./lib/backend/backend_server.ts";
export * from "./lib/backend/methods.ts";
export * from "./lib/backend/run_backend.ts";
export * from "./lib/backend/legacy_methods.ts";
export { isLoopback, runProxy, type RunProxyOptions } from "./lib/proxy/run_proxy.ts";
export type { ProxyStats } from "./lib/proxy/proxy_server.ts";
export { SERVE_OPTIONS, type ServeSettings } from "./lib/options/serve_options.ts";
export { BACKEND_OPTIONS, type BackendSettings } from "./lib/options/backend_options.ts";
export { OptionError } from "./lib/options/option.ts";
export {
  closeLogging,
  configureLogging,
  getLogger,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type LoggingOptions,
  type LogLevel,
} from "./lib/log.ts";
