/**
 * A MessagePack-RPC client with pipelining, timeouts and cancellation.
 *
 * @module
 */

import type { Address } from "../net/address.ts";
import { FrameConnection } from "../net/frame_connection.ts";
import { PendingTable } from "../net/pending_table.ts";
import type { TlsClientFields } from "../net/tls.ts";
import { openConnection } from "./open_connection.ts";
import {
  decodeMessage,
  encodeNotification,
  encodeRequest,
  ErrorCode,
  type InvalidMessageError,
  ProxyError,
  RemoteError,
  RESPONSE,
  toWireError,
} from "../protocol/mod.ts";

/** Options of {@linkcode RpcClient.connect}. */
export interface RpcClientOptions extends TlsClientFields {
  /**
   * Largest message accepted, in bytes.
   * @default {8388608}
   */
  maxMessageSize?: number;
  /**
   * Milliseconds to wait for the connection; 0 waits as long as the OS does.
   * @default {0}
   */
  connectTimeout?: number;
  /** Aborts connecting. */
  signal?: AbortSignal;
  /**
   * Deepest nesting of arrays and maps decoded in results; a deeper answer
   * fails its call with `PARSE_ERROR` (the connection goes on).
   * @default {512}
   */
  maxDepth?: number;
  /**
   * Authenticate with this token (`proxy.auth`, before any call) to a proxy
   * started with `--auth-token-file`.
   */
  token?: string | Uint8Array;
}

/** Options of {@linkcode RpcClient.call}. */
export interface CallOptions {
  /**
   * Milliseconds to wait for the answer; 0 waits forever.
   * @default {0}
   */
  timeout?: number;
  /** Cancels the call: it rejects with `ABORTED` and its answer is ignored. */
  signal?: AbortSignal;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: ProxyError) => void;
  cleanup: (() => void) | undefined;
}

/**
 * A client connection. Calls may be issued concurrently; answers are matched
 * by msgid in whatever order they arrive. Values go out and come back
 * exactly (see `encodeValue` and `decodeValue`): integers beyond 2^53 as
 * `bigint`, whole floats as `Float`, timestamps as `Timestamp`, other
 * extensions as `Ext`.
 *
 * @example Pipelined calls, a timeout, cancellation
 * ```ts
 * import assert from "node:assert/strict";
 * import { RpcClient } from "./rpc_client.ts";
 * import { BackendServer } from "../backend/backend_server.ts";
 *
 * const server = new BackendServer({
 *   address: { transport: "tcp", hostname: "127.0.0.1", port: 0 },
 *   methods: { echo: (x) => x, never: () => new Promise(() => {}) },
 * });
 * const { port } = await server.listen() as { port: number };
 *
 * const client = await RpcClient.connect(`127.0.0.1:${port}`, { connectTimeout: 1000 });
 * const answers = await Promise.all([1, 2, 3].map((n) => client.call("echo", [n])));
 * assert.deepEqual(answers, [1, 2, 3]);
 * await assert.rejects(client.call("never", [], { timeout: 50 }), { code: "TIMEOUT" });
 * const abort = new AbortController();
 * const call = client.call("never", [], { signal: abort.signal });
 * abort.abort();
 * await assert.rejects(call, { code: "ABORTED" });
 * client.close();
 * await server.close(AbortSignal.timeout(100)); // gives up on the calls that never end
 * ```
 *
 * @example Over TLS, with a token
 * ```ts ignore
 * import { RpcClient } from "./rpc_client.ts";
 * const client = await RpcClient.connect("proxy.example.com:8443", {
 *   tls: true,
 *   caCerts: [await Deno.readTextFile("ca.pem")],
 *   token: "s3cret",
 * });
 * ```
 */
export class RpcClient {
  readonly #conn: FrameConnection;
  readonly #pending = new PendingTable<Pending>(); // by msgid (see PendingTable: not a Map)
  readonly #decodeOptions: { maxDepth?: number };
  #closed = false;

  private constructor(conn: Deno.Conn, options: RpcClientOptions) {
    this.#decodeOptions = options.maxDepth === undefined ? {} : { maxDepth: options.maxDepth };
    const frameOptions = {
      onFrame: (frame: Uint8Array) => this.#onFrame(frame),
      onProtocolError: (err: ProxyError) => this.#failAll(err),
      onClose: () => this.#onClose(),
    };
    this.#conn = new FrameConnection(
      conn,
      options.maxMessageSize === undefined
        ? frameOptions
        : { ...frameOptions, maxMessageSize: options.maxMessageSize },
    );
    this.#conn.run().catch(() => this.#conn.close());
  }

  /**
   * Connects to a server.
   *
   * @param address `HOST:PORT`, `unix:/path`, or a parsed {@linkcode Address}.
   * @param options Limits, cancellation, TLS and a token.
   * @throws {ProxyError} `CONNECT_FAILED` (with the OS error as cause), `TLS_FAILED`, or `TIMEOUT`.
   * @throws {RemoteError} `UNAUTHENTICATED` when the proxy refuses `token`.
   */
  static async connect(
    address: string | Address,
    options: RpcClientOptions = {},
  ): Promise<RpcClient> {
    const { connectTimeout, maxDepth: _d, maxMessageSize: _m, ...open } = options;
    const conn = await openConnection(address, { ...open, timeout: connectTimeout ?? 0 });
    return new RpcClient(conn, options);
  }

  /** True once the connection has closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Calls currently awaiting an answer. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** Resolves when the connection has closed. */
  get done(): Promise<void> {
    return this.#conn.done;
  }

  /**
   * Calls `method` with `params` and resolves with its result.
   *
   * @throws {RemoteError} The server answered with an error (its code is kept).
   * @throws {ProxyError} `TIMEOUT`, `ABORTED`, or `CONNECTION_CLOSED`.
   */
  call(method: string, params: unknown[] = [], options: CallOptions = {}): Promise<unknown> {
    if (this.#closed) {
      return Promise.reject(
        new ProxyError(ErrorCode.CONNECTION_CLOSED, `Cannot call ${method}: connection closed`),
      );
    }
    if (options.signal?.aborted) {
      return Promise.reject(new ProxyError(ErrorCode.ABORTED, `Cannot call ${method}: aborted`));
    }
    return new Promise((resolve, reject) => {
      const pending: Pending = { resolve, reject, cleanup: undefined };
      const msgid = this.#pending.add(pending);
      let frame: Uint8Array;
      try {
        frame = encodeRequest(msgid, method, params);
      } catch (err) {
        this.#pending.delete(msgid);
        reject(err); // params MessagePack cannot express
        return;
      }
      const timeout = options.timeout ?? 0;
      const signal = options.signal;
      if (timeout > 0 || signal) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const onAbort = () => {
          this.#pending.delete(msgid);
          pending.cleanup?.();
          reject(new ProxyError(ErrorCode.ABORTED, `Cannot call ${method}: aborted`));
        };
        if (timeout > 0) {
          timer = setTimeout(() => {
            this.#pending.delete(msgid);
            pending.cleanup?.();
            reject(
              new ProxyError(
                ErrorCode.TIMEOUT,
                `Cannot call ${method}: no answer in ${timeout} ms`,
              ),
            );
          }, timeout);
        }
        signal?.addEventListener("abort", onAbort, { once: true });
        pending.cleanup = () => {
          if (timer !== undefined) clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
        };
      }
      this.#conn.write(frame);
    });
  }

  /** Sends a notification (no answer). */
  notify(method: string, params: unknown[] = []): void {
    if (this.#closed) {
      throw new ProxyError(
        ErrorCode.CONNECTION_CLOSED,
        `Cannot notify ${method}: connection closed`,
      );
    }
    this.#conn.write(encodeNotification(method, params));
  }

  /** Sends raw bytes as they are (tests use it to send malformed input). */
  writeRaw(bytes: Uint8Array): void {
    this.#conn.write(bytes);
  }

  #onFrame(frame: Uint8Array): void {
    let msg;
    try {
      msg = decodeMessage(frame, this.#decodeOptions);
    } catch (err) {
      const e = err as InvalidMessageError;
      // A body that cannot be decoded fails its own call; a broken envelope
      // leaves nothing to trust on this connection.
      const pending = typeof e.msgid === "number" ? this.#pending.get(e.msgid) : undefined;
      if (pending && e.code === ErrorCode.PARSE_ERROR) {
        this.#pending.delete(e.msgid as number);
        pending.cleanup?.();
        pending.reject(e);
        return;
      }
      this.#failAll(e);
      this.#conn.close();
      return;
    }
    if (msg.type !== RESPONSE) return; // servers do not call clients here
    const pending = this.#pending.take(msg.msgid);
    if (!pending) return; // timed out or aborted already
    pending.cleanup?.();
    if (msg.error !== null && msg.error !== undefined) {
      pending.reject(new RemoteError(toWireError(msg.error)));
    } else pending.resolve(msg.result);
  }

  #failAll(err: ProxyError): void {
    for (const pending of this.#pending.values()) {
      pending.cleanup?.();
      pending.reject(err);
    }
    this.#pending.clear();
  }

  #onClose(): void {
    this.#closed = true;
    this.#failAll(
      new ProxyError(ErrorCode.CONNECTION_CLOSED, "Cannot get answer: connection closed"),
    );
  }

  /** Waits for queued requests to be written, then closes. Idempotent. */
  async end(): Promise<void> {
    await this.#conn.end();
  }

  /** Closes at once; calls in flight reject with `CONNECTION_CLOSED`. Idempotent. */
  close(): void {
    this.#conn.close();
  }
}
