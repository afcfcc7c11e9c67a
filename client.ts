/**
 * Clients: {@linkcode RpcClient} for MessagePack-RPC (pipelined calls,
 * timeouts, cancellation, values exactly as sent), {@linkcode LegacyClient}
 * for the original C++ proxy's binary protocol, and what their answers hold:
 * the error classes and codes, and the values MessagePack has and JavaScript
 * does not. Runs on Deno and on Node (through `node:net` when there is no
 * `Deno`).
 *
 * @example Call a server
 * ```ts
 * import assert from "node:assert/strict";
 * import { BackendServer } from "./backend.ts";
 * import { formatAddress, RpcClient } from "./client.ts";
 *
 * // Any MessagePack-RPC server will do; this one serves `add` on a free port.
 * const server = new BackendServer({
 *   address: { transport: "tcp", hostname: "127.0.0.1", port: 0 },
 *   methods: { add: (a, b) => (a as number) + (b as number) },
 * });
 * const address = formatAddress(await server.listen());
 *
 * const client = await RpcClient.connect(address);
 * assert.equal(await client.call("add", [1, 2], { timeout: 1000 }), 3);
 * client.close();
 * await server.close();
 * ```
 *
 * @module
 */

export { type Address, formatAddress, parseAddress } from "./lib/net/address.ts";
export { type CallOptions, RpcClient, type RpcClientOptions } from "./lib/client/rpc_client.ts";
export {
  type LegacyCallOptions,
  LegacyClient,
  type LegacyClientOptions,
  type LegacyRequest,
} from "./lib/client/legacy_client.ts";
export type { LegacyFrame, LegacyHeader } from "./lib/protocol/legacy_frame.ts";
export {
  ErrorCode,
  ProxyError,
  type ProxyErrorOptions,
  RemoteError,
  type WireError,
} from "./lib/protocol/errors.ts";
export { Ext, Float, RawString, Timestamp } from "./lib/protocol/values.ts";
export type { TlsClientFields } from "./lib/net/tls.ts";
