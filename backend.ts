/**
 * Serving methods over MessagePack-RPC: {@linkcode BackendServer} (a server
 * with a table of methods, on TCP or a Unix socket), {@linkcode runBackend}
 * (what `proxy backend` runs: the built-in methods, handler modules, signals),
 * handler modules ({@linkcode loadHandlerModule}), and functions of the
 * legacy protocol ({@linkcode legacyMethods}). A thrown {@linkcode ProxyError}
 * answers with its code; anything else thrown is `HANDLER_ERROR`. Needs Deno.
 *
 * @example A server with one method
 * ```ts
 * import assert from "node:assert/strict";
 * import { BackendServer, ErrorCode, ProxyError } from "./backend.ts";
 * import { formatAddress, RemoteError, RpcClient } from "./client.ts";
 *
 * const server = new BackendServer({
 *   address: { transport: "tcp", hostname: "127.0.0.1", port: 0 },
 *   methods: {
 *     sqrt(x) {
 *       if (typeof x !== "number" || x < 0) {
 *         throw new ProxyError(ErrorCode.INVALID_PARAMS, "Cannot take sqrt: need a number >= 0");
 *       }
 *       return Math.sqrt(x);
 *     },
 *   },
 * });
 * const client = await RpcClient.connect(formatAddress(await server.listen()));
 * assert.equal(await client.call("sqrt", [9]), 3);
 * const err = await client.call("sqrt", [-1]).catch((e) => e);
 * assert.ok(err instanceof RemoteError);
 * assert.equal(err.code, ErrorCode.INVALID_PARAMS);
 * client.close();
 * await server.close();
 * ```
 *
 * @module
 */

export { BackendServer, type BackendServerOptions } from "./lib/backend/backend_server.ts";
export {
  LEGACY_CALL_METHOD,
  type LegacyCallRequest,
  type LegacyFunction,
  type LegacyFunctions,
  legacyMethods,
  UNKNOWN_FUNCTION,
} from "./lib/backend/legacy_methods.ts";
export {
  builtinMethods,
  type BuiltinMethodsOptions,
  loadHandlerModule,
  type Method,
  type Methods,
} from "./lib/backend/methods.ts";
export { runBackend, type RunBackendOptions } from "./lib/backend/run_backend.ts";
export { type HandlerLogger, handlerLogger } from "./lib/log.ts";
export type { LogSettings } from "./lib/options/log_options.ts";
export type { BackendSettings } from "./lib/options/backend_options.ts";
export { ErrorCode, ProxyError, type ProxyErrorOptions } from "./lib/protocol/errors.ts";
export type { TlsServerCert } from "./lib/net/tls.ts";
