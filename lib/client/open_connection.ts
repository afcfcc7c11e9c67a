/**
 * A client's connection, ready for calls: connected (over TLS when asked)
 * and, given a token, authenticated: `proxy.auth` sent before anything else
 * and its answer read. The connection is then handed on as it is (the proxy
 * sends nothing else before a request), to an `RpcClient` or the load
 * generator alike.
 *
 * @module
 */

import { type Address, connectWithin } from "../net/address.ts";
import { clientTls, type TlsClientFields } from "../net/tls.ts";
import {
  AUTH_METHOD,
  decodeMessage,
  encodeRequest,
  ErrorCode,
  FrameDecoder,
  ProxyError,
  RemoteError,
  RESPONSE,
  toWireError,
} from "../protocol/mod.ts";

/** Options of {@linkcode openConnection}. */
export interface OpenConnectionOptions extends TlsClientFields {
  /**
   * Milliseconds for connecting, and again for authenticating; 0 waits as
   * long as the OS does.
   * @default {0}
   */
  timeout?: number;
  /** Aborts connecting. */
  signal?: AbortSignal;
  /** Authenticate with this token (`proxy.auth`). */
  token?: string | Uint8Array;
}

/**
 * Connects, with TLS when `tls` is set, and authenticates when given a token.
 *
 * @param address `HOST:PORT`, `unix:/path`, or a parsed {@linkcode Address}.
 * @param options Time limit, cancellation, TLS and token.
 * @throws {ProxyError} `CONNECT_FAILED`, `TLS_FAILED`, `TIMEOUT`, `ABORTED` (see `connectWithin`).
 * @throws {RemoteError} `UNAUTHENTICATED` when the token is refused.
 */
export async function openConnection(
  address: string | Address,
  options: OpenConnectionOptions = {},
): Promise<Deno.Conn> {
  const tls = clientTls(options);
  const timeout = options.timeout ?? 0;
  const conn = await connectWithin(address, {
    timeout,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(tls ? { tls } : {}),
  });
  if (options.token !== undefined) await authenticate(conn, options.token, { timeout });
  return conn;
}

/** Options of {@linkcode authenticate}. */
export interface AuthenticateOptions {
  /** Milliseconds to wait for the answer; 0 waits forever. @default {0} */
  timeout?: number;
}

/**
 * Sends `proxy.auth` with `token` as the connection's first message and
 * waits for its answer. The connection is closed when it fails.
 *
 * @param conn A connection nothing has been sent on yet.
 * @param token The token, as a str (string) or a bin (bytes).
 * @throws {RemoteError} `UNAUTHENTICATED` when the token is refused.
 * @throws {ProxyError} `TIMEOUT`, `CONNECTION_CLOSED`, or `INVALID_REQUEST` for an answer that makes no sense.
 */
export async function authenticate(
  conn: Deno.Conn,
  token: string | Uint8Array,
  options: AuthenticateOptions = {},
): Promise<void> {
  const timeout = options.timeout ?? 0;
  let timedOut = false;
  const timer = timeout > 0
    ? setTimeout(() => {
      timedOut = true;
      closeQuietly(conn); // ends the read below
    }, timeout)
    : undefined;
  try {
    const request = encodeRequest(0, AUTH_METHOD, [token]);
    for (let off = 0; off < request.length;) off += await conn.write(request.subarray(off));
    const decoder = new FrameDecoder({ maxMessageSize: 64 * 1024 });
    let frame: Uint8Array | null = null;
    while (frame === null) {
      const n = await conn.read(decoder.reserve());
      if (n === null) {
        throw new ProxyError(
          ErrorCode.CONNECTION_CLOSED,
          "Cannot authenticate: the server closed the connection",
        );
      }
      decoder.commit(n);
      frame = decoder.next();
    }
    const answer = decodeMessage(frame);
    if (answer.type !== RESPONSE || answer.msgid !== 0 || decoder.buffered > 0) {
      throw new ProxyError(
        ErrorCode.INVALID_REQUEST,
        `Cannot authenticate: the server sent something other than the answer to ${AUTH_METHOD}`,
      );
    }
    if (answer.error !== null && answer.error !== undefined) {
      throw new RemoteError(toWireError(answer.error));
    }
    if (answer.result !== true) {
      throw new ProxyError(
        ErrorCode.UNAUTHENTICATED,
        `Cannot authenticate: ${AUTH_METHOD} answered ${String(answer.result)}, not true`,
      );
    }
  } catch (err) {
    closeQuietly(conn);
    if (timedOut) {
      throw new ProxyError(
        ErrorCode.TIMEOUT,
        `Cannot authenticate: no answer to ${AUTH_METHOD} in ${timeout} ms`,
      );
    }
    if (err instanceof ProxyError) throw err;
    throw new ProxyError(
      ErrorCode.CONNECTION_CLOSED,
      `Cannot authenticate: ${(err as Error).message}`,
      { cause: err },
    );
  } finally {
    clearTimeout(timer);
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // closed already
  }
}
