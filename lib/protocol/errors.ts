/**
 * Error codes and the error classes that carry them.
 *
 * Every error the proxy reports, locally or on the wire, has a stable string
 * `code` from {@linkcode ErrorCode}. On the wire an error is the map
 * `{ code, message, data? }` (see {@linkcode WireError}).
 *
 * @module
 */

/**
 * Stable error codes. Callers match on these, never on messages.
 *
 * @example Match on the code
 * ```ts
 * import assert from "node:assert/strict";
 * import { ErrorCode, ProxyError } from "./errors.ts";
 * const err: unknown = new ProxyError(ErrorCode.QUEUE_FULL, "Cannot queue request: queue full");
 * assert.ok(err instanceof ProxyError && err.code === ErrorCode.QUEUE_FULL);
 * ```
 */
export const ErrorCode = {
  /** The bytes are not MessagePack at all (e.g. the reserved byte 0xc1). */
  PARSE_ERROR: "PARSE_ERROR",
  /** Valid MessagePack that is not a MessagePack-RPC message. */
  INVALID_REQUEST: "INVALID_REQUEST",
  /** A message larger than the configured maximum message size. */
  MESSAGE_TOO_LARGE: "MESSAGE_TOO_LARGE",
  /** No method of that name on the server. */
  METHOD_NOT_FOUND: "METHOD_NOT_FOUND",
  /** The method exists but its parameters are wrong. */
  INVALID_PARAMS: "INVALID_PARAMS",
  /** A handler threw or rejected; `message` is the handler's message. */
  HANDLER_ERROR: "HANDLER_ERROR",
  /** A handler needed a Deno permission its worker was not given (see `--worker-allow-*`). */
  PERMISSION_DENIED: "PERMISSION_DENIED",
  /** The worker serving the request exited before answering. */
  WORKER_EXITED: "WORKER_EXITED",
  /** The request was not answered within its deadline. */
  TIMEOUT: "TIMEOUT",
  /** Every worker is busy and the wait queue is full. */
  QUEUE_FULL: "QUEUE_FULL",
  /** The request waited in the queue longer than the queue timeout. */
  QUEUE_TIMEOUT: "QUEUE_TIMEOUT",
  /** No worker is available (none could be started, or all crash at start). */
  NO_WORKERS: "NO_WORKERS",
  /** Dedicated mode: a new routing key would need more than `--max-workers` workers. */
  WORKER_LIMIT: "WORKER_LIMIT",
  /** Dedicated mode: the request has no routing key at the configured path. */
  NO_ROUTE_KEY: "NO_ROUTE_KEY",
  /** The server is shutting down and takes no new requests. */
  SHUTTING_DOWN: "SHUTTING_DOWN",
  /** The upstream serving the request failed (its connection broke) before answering. */
  UPSTREAM_FAILED: "UPSTREAM_FAILED",
  /** No upstream can take the request (none connected, healthy or discovered). */
  NO_UPSTREAMS: "NO_UPSTREAMS",
  /** The request's upstream is at its limit of requests in flight and waiting. */
  UPSTREAM_OVERLOADED: "UPSTREAM_OVERLOADED",
  /** A `proxy.*` method that changes state, called without `--control-methods`. */
  FORBIDDEN: "FORBIDDEN",
  /** `proxy.reload`: the config file was refused (the running configuration stays). */
  CONFIG_REFUSED: "CONFIG_REFUSED",
  /**
   * The proxy wants a token (`--auth-token-file`): the first message was not
   * `proxy.auth`, or its token is not one of those accepted. The connection closes.
   */
  UNAUTHENTICATED: "UNAUTHENTICATED",
  /**
   * A TLS handshake failed: the peer's certificate is not trusted or not for
   * its name, or the peer does not speak TLS (client side and upstreams).
   */
  TLS_FAILED: "TLS_FAILED",
  /** The connection closed before the answer arrived (client side). */
  CONNECTION_CLOSED: "CONNECTION_CLOSED",
  /** The connection could not be established (client side). */
  CONNECT_FAILED: "CONNECT_FAILED",
  /** The operation was cancelled through an `AbortSignal`. */
  ABORTED: "ABORTED",
} as const;

/** One of the values of {@linkcode ErrorCode}. */
export type ErrorCode = typeof ErrorCode[keyof typeof ErrorCode];

/** An error as it travels in the `error` slot of a MessagePack-RPC response. */
export interface WireError {
  /** Stable code, usually one of {@linkcode ErrorCode}; handlers may use their own. */
  code: string;
  /** Human-readable description. */
  message: string;
  /** Optional details (e.g. a dead worker's last stderr lines). */
  data?: unknown;
}

/** Options of {@linkcode ProxyError}. */
export interface ProxyErrorOptions {
  /** Details sent along in the wire error's `data`. */
  data?: unknown;
  /** The underlying error. */
  cause?: unknown;
}

/**
 * An error with a stable {@linkcode ErrorCode}.
 *
 * @example Usage
 * ```ts
 * import { ErrorCode, ProxyError } from "./errors.ts";
 * const err = new ProxyError(ErrorCode.TIMEOUT, "Cannot answer: deadline of 5 ms exceeded");
 * console.log(err.code); // "TIMEOUT"
 * ```
 */
export class ProxyError extends Error {
  /** The stable error code. */
  readonly code: string;
  /** Details for the wire error's `data`, if any. */
  readonly data: unknown;

  /**
   * Creates the error.
   *
   * @param code A stable code, usually one of {@linkcode ErrorCode}.
   * @param message Human-readable description.
   * @param options Details and cause.
   */
  constructor(code: string, message: string, options: ProxyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ProxyError";
    this.code = code;
    this.data = options.data;
  }

  /** The error as a wire map. */
  toWire(): WireError {
    const wire: WireError = { code: this.code, message: this.message };
    if (this.data !== undefined) wire.data = this.data;
    return wire;
  }
}

/**
 * An error response received from a remote server. Its `code` and `data` are
 * the remote's.
 *
 * @example An error answer
 * ```ts
 * import assert from "node:assert/strict";
 * import { RemoteError } from "./errors.ts";
 * import { BackendServer } from "../backend/backend_server.ts";
 * import { RpcClient } from "../client/rpc_client.ts";
 *
 * const server = new BackendServer({
 *   address: { transport: "tcp", hostname: "127.0.0.1", port: 0 },
 *   methods: {},
 * });
 * const { port } = await server.listen() as { port: number };
 * const client = await RpcClient.connect(`127.0.0.1:${port}`);
 * const err = await client.call("nope").catch((e) => e);
 * assert.ok(err instanceof RemoteError);
 * assert.equal(err.code, "METHOD_NOT_FOUND");
 * client.close();
 * await server.close();
 * ```
 */
export class RemoteError extends ProxyError {
  /**
   * Creates the error from a response's error slot.
   *
   * @param wire The error as received (see {@linkcode toWireError}).
   */
  constructor(wire: WireError) {
    super(wire.code, wire.message, wire.data === undefined ? {} : { data: wire.data });
    this.name = "RemoteError";
  }
}

/**
 * Turns anything found in a response's error slot into a {@linkcode WireError}.
 * Peers that are not this proxy may send another shape: `[code, message]`
 * (Neovim, pynvim, and this proxy with `--error-format array`), a plain
 * string, or anything else.
 *
 * @param value The error slot as decoded.
 * @returns A normalised wire error.
 *
 * @example Usage
 * ```ts
 * import { toWireError } from "./errors.ts";
 * console.log(toWireError(["QUEUE_FULL", "all workers busy"]).code); // QUEUE_FULL
 * console.log(toWireError([0, "E5555: boom"]).message); // E5555: boom
 * ```
 */
export function toWireError(value: unknown): WireError {
  if (Array.isArray(value) && value.length === 2 && typeof value[1] === "string") {
    const [type, message] = value;
    if (typeof type === "string") return { code: type, message };
    return { code: "REMOTE_ERROR", message, data: { type } };
  }
  if (
    value !== null && typeof value === "object" && !Array.isArray(value) &&
    !(value instanceof Map) && !(value instanceof Uint8Array)
  ) {
    const v = value as Record<string, unknown>;
    const code = typeof v.code === "string" ? v.code : "REMOTE_ERROR";
    const message = typeof v.message === "string" ? v.message : safeJson(value);
    const wire: WireError = { code, message };
    if (v.data !== undefined) wire.data = v.data;
    return wire;
  }
  return {
    code: "REMOTE_ERROR",
    message: typeof value === "string" ? value : safeJson(value),
  };
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v) => typeof v === "bigint" ? v.toString() : v) ??
      String(value);
  } catch {
    return String(value);
  }
}

/**
 * Turns any thrown value into a {@linkcode WireError}; a non-{@linkcode ProxyError}
 * becomes `HANDLER_ERROR` with its message. An error named `ProxyError` with
 * a string `code` counts as one even when it is not this module's class: a
 * handler module run by the npm package's bundle imports another copy.
 *
 * @param err What was thrown.
 * @returns The wire error to answer with.
 */
export function errorToWire(err: unknown): WireError {
  if (err instanceof ProxyError) return err.toWire();
  if (
    err instanceof Error && err.name === "ProxyError" &&
    typeof (err as { code?: unknown }).code === "string"
  ) {
    const data = (err as { data?: unknown }).data;
    return {
      code: (err as unknown as { code: string }).code,
      message: err.message,
      ...(data === undefined ? {} : { data }),
    };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: ErrorCode.HANDLER_ERROR, message };
}
