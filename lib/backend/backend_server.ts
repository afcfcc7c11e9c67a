/**
 * The MessagePack-RPC server behind `proxy backend`.
 *
 * @module
 */

import { acceptEach, type Address, connect, listen, listenerAddress } from "../net/address.ts";
import { ConnectionSweeper } from "../net/connection_sweeper.ts";
import { listenTls, type TlsServerCert } from "../net/tls.ts";
import { FrameConnection } from "../net/frame_connection.ts";
import {
  createEnvelope,
  decodeValue,
  encodeError,
  encodeResult,
  ErrorCode,
  type ErrorFormat,
  errorToWire,
  type InvalidMessageError,
  NOTIFICATION,
  peekRequestMsgid,
  ProxyError,
  readEnvelope,
  REQUEST,
  type WireError,
} from "../protocol/mod.ts";
import { getLogger } from "../log.ts";
import type { Methods } from "./methods.ts";
import { permissionError } from "./permission_error.ts";

/** Options of {@linkcode BackendServer}. */
export interface BackendServerOptions {
  /** Where to listen. */
  address: Address;
  /** Serve over TLS with this certificate (TCP addresses only). */
  tls?: TlsServerCert;
  /** The methods served. */
  methods: Methods;
  /**
   * Largest message accepted, in bytes.
   * @default {8388608}
   */
  maxMessageSize?: number;
  /**
   * Unread answers held per client above which its requests stop being read.
   * @default {4194304}
   */
  writeBufferLimit?: number;
  /** Called when a peer sends the `shutdown` notification. */
  onShutdownRequest?: () => void;
  /** How errors are written: `{code, message, data}` or `[code, message]`. @default {"map"} */
  errorFormat?: ErrorFormat;
  /** Deepest nesting of params accepted; deeper is answered `INVALID_PARAMS`. @default {512} */
  maxDepth?: number;
  /** Milliseconds a message may take to arrive once begun; 0 = no limit. @default {30000} */
  messageTimeout?: number;
  /** Milliseconds a connection may be idle between messages; 0 = no limit. @default {0} */
  idleTimeout?: number;
  /** Connections held at once; more are closed at once. @default {10000} */
  maxConnections?: number;
  /**
   * Requests one connection may have in flight; beyond, its requests are not
   * read until answers go out.
   * @default {1024}
   */
  maxInFlightPerConnection?: number;
}

const envelope = createEnvelope();
const log = getLogger(["backend"]);

/**
 * Serves methods over MessagePack-RPC on a Unix socket or TCP. Requests on one
 * connection run concurrently and are answered as they finish.
 *
 * A request whose params cannot be decoded (nested too deep, say) is answered
 * `INVALID_PARAMS` with its msgid, and the connection goes on; only a frame
 * whose envelope is broken (not a request, a msgid that is not an integer)
 * ends the connection, after the answers owed before it.
 *
 * @example Serve two methods on a Unix socket
 * ```ts
 * import assert from "node:assert/strict";
 * import { BackendServer } from "./backend_server.ts";
 * import { RpcClient } from "../client/rpc_client.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const server = new BackendServer({
 *   address: { transport: "unix", path: `${dir}/w.sock` },
 *   methods: {
 *     add: (a, b) => (a as number) + (b as number),
 *     later: async (ms) => {
 *       await new Promise((r) => setTimeout(r, ms as number));
 *       return "done";
 *     },
 *   },
 * });
 * await server.listen();
 * const client = await RpcClient.connect(`unix:${dir}/w.sock`);
 * assert.deepEqual(
 *   await Promise.all([client.call("later", [20]), client.call("add", [1, 2])]),
 *   ["done", 3],
 * );
 * client.close();
 * await server.close(); // waits for requests in flight, removes the socket file
 * await Deno.remove(dir);
 * ```
 */
export class BackendServer {
  readonly #options: BackendServerOptions;
  #listener: Deno.Listener | null = null;
  readonly #conns = new Set<FrameConnection>();
  #requests = 0;
  #inFlight = 0;
  #refused = 0;
  #idle: (() => void)[] = [];
  #closing: Promise<void> | null = null;
  #socketPath: string | null = null;
  readonly #format: ErrorFormat;
  readonly #maxDepth: number | undefined;
  readonly #maxInFlight: number;
  readonly #sweeper: ConnectionSweeper;

  /**
   * Creates a server; {@linkcode BackendServer.listen} starts it.
   *
   * @param options Where to listen and what to serve.
   */
  constructor(options: BackendServerOptions) {
    this.#options = options;
    this.#format = options.errorFormat ?? "map";
    this.#maxDepth = options.maxDepth;
    this.#maxInFlight = options.maxInFlightPerConnection ?? 1024;
    this.#sweeper = new ConnectionSweeper({
      limits: {
        messageTimeout: options.messageTimeout ?? 30_000,
        idleTimeout: options.idleTimeout ?? 0,
      },
      onSwept: (reason) => log.debug(`Closed a connection: ${reason}`),
    });
  }

  /** Requests answered so far. */
  get requests(): number {
    return this.#requests;
  }

  /** Requests being served now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Connections open now. */
  get connections(): number {
    return this.#conns.size;
  }

  /** Connections closed at once because `maxConnections` were open. */
  get refused(): number {
    return this.#refused;
  }

  /**
   * Starts listening; for a Unix socket, a stale socket file nobody listens
   * on is replaced.
   *
   * @returns The bound address (with the real port when port 0 was asked).
   * @throws {Deno.errors.AddrInUse} When another server listens there.
   * @throws {TypeError} For TLS on a Unix socket.
   * @throws {Error} When the TLS certificate or key is unusable.
   */
  async listen(): Promise<Address> {
    const { address, tls } = this.#options;
    if (tls && address.transport !== "tcp") {
      throw new TypeError("Cannot listen with TLS on a Unix socket");
    }
    if (address.transport === "unix") await removeStaleSocket(address.path);
    this.#listener = tls && address.transport === "tcp"
      ? await listenTls(address, tls)
      : listen(address);
    if (address.transport === "unix") this.#socketPath = address.path;
    void this.#accept(this.#listener);
    return listenerAddress(this.#listener);
  }

  async #accept(listener: Deno.Listener): Promise<void> {
    const max = this.#options.maxConnections ?? 10_000;
    await acceptEach(listener, (conn) => {
      if (this.#closing || this.#conns.size >= max) {
        if (!this.#closing) this.#refused++;
        conn.close();
      } else this.#serve(conn);
    });
  }

  #serve(raw: Deno.Conn): void {
    let pending = 0; // answers owed on this connection
    let eof = false;
    let broken = false; // a bad frame arrived: serve nothing after it
    let waitingForFlush = false;
    const format = this.#format;
    const maxInFlight = this.#maxInFlight;
    // Reading pauses while the client does not read its answers, or has as
    // many requests in flight as it may.
    const updatePause = () => {
      if (conn.closed) return;
      if (conn.congested && !waitingForFlush) {
        waitingForFlush = true;
        void conn.flushed().then(() => {
          waitingForFlush = false;
          updatePause();
        });
      }
      conn.setReadPaused(waitingForFlush || pending >= maxInFlight);
    };
    const answer = (msgid: number, wire: WireError | null, result: unknown) => {
      let bytes: Uint8Array;
      if (wire) bytes = encodeError(msgid, wire, format);
      else {
        try {
          bytes = encodeResult(msgid, result);
        } catch (err) {
          bytes = encodeError(msgid, {
            code: ErrorCode.HANDLER_ERROR,
            message: `Cannot encode result: ${(err as Error).message}`,
          }, format);
        }
      }
      conn.write(bytes);
    };
    const conn: FrameConnection = new FrameConnection(raw, {
      ...(this.#options.maxMessageSize === undefined
        ? {}
        : { maxMessageSize: this.#options.maxMessageSize }),
      ...(this.#options.writeBufferLimit === undefined
        ? {}
        : { highWaterMark: this.#options.writeBufferLimit }),
      onFrame: (frame) => {
        if (broken) return;
        try {
          readEnvelope(frame, envelope);
        } catch (err) {
          const e = err as InvalidMessageError;
          if (e.msgid !== undefined) conn.write(encodeError(e.msgid, e.toWire(), format));
          // The stream cannot be trusted any more; requests before it still get answers.
          broken = true;
          conn.stopReading();
          if (pending === 0) void conn.end();
          return;
        }
        const { type, msgid, method, body } = envelope;
        if (type !== REQUEST && type !== NOTIFICATION) return; // a backend calls no one
        let params: unknown[];
        try {
          params = decodeValue(frame, {
            start: body,
            ...(this.#maxDepth === undefined ? {} : { maxDepth: this.#maxDepth }),
          }) as unknown[];
        } catch (err) {
          if (type === REQUEST) {
            answer(msgid, {
              code: ErrorCode.INVALID_PARAMS,
              message: `Cannot call ${method}: ${(err as Error).message}`,
            }, null);
          } else log.debug(`Notification ${method} dropped: ${(err as Error).message}`);
          return;
        }
        if (type === NOTIFICATION) {
          if (method === "shutdown") this.#options.onShutdownRequest?.();
          else this.#call(method, params, () => {});
          return;
        }
        pending++;
        this.#inFlight++;
        if (pending >= maxInFlight) updatePause();
        this.#call(method, params, (error, result) => {
          this.#requests++;
          this.#inFlight--;
          pending--;
          answer(msgid, error, result);
          if ((eof || broken) && pending === 0) void conn.end();
          else updatePause();
          if (this.#inFlight === 0) this.#notifyIdle();
        });
      },
      onProtocolError: (err, partial) => {
        const msgid = peekRequestMsgid(partial);
        if (msgid !== undefined) conn.write(encodeError(msgid, err.toWire(), format));
      },
      onEof: () => {
        eof = true;
        if (pending === 0) void conn.end();
      },
      onClose: () => {
        this.#conns.delete(conn);
        this.#sweeper.delete(conn);
      },
    });
    conn.setBusyCheck(() => pending > 0);
    this.#conns.add(conn);
    this.#sweeper.add(conn);
    conn.run().catch(() => conn.close());
  }

  // Calls a method. A handler that returns a plain value is answered at once,
  // without a promise (most requests); one that returns a promise, when it settles.
  #call(
    method: string,
    params: unknown[],
    done: (error: WireError | null, result: unknown) => void,
  ): void {
    const fn = Object.hasOwn(this.#options.methods, method)
      ? this.#options.methods[method]
      : undefined;
    if (!fn) {
      done(
        new ProxyError(ErrorCode.METHOD_NOT_FOUND, `Cannot call ${method}: no such method`)
          .toWire(),
        null,
      );
      return;
    }
    let value: unknown;
    try {
      value = fn(...params);
    } catch (err) {
      done(handlerErrorToWire(method, err), null);
      return;
    }
    if (
      value !== null && typeof value === "object" &&
      typeof (value as { then?: unknown }).then === "function"
    ) {
      (value as PromiseLike<unknown>).then(
        (result) => done(null, result),
        (err) => done(handlerErrorToWire(method, err), null),
      );
    } else done(null, value);
  }

  #notifyIdle(): void {
    const waiters = this.#idle;
    this.#idle = [];
    for (const w of waiters) w();
  }

  /**
   * Stops at once: closes the listener and every connection without waiting
   * for requests in flight (their answers are lost), removes the socket file.
   * Idempotent; tests use it to play a crashed worker.
   */
  async destroy(): Promise<void> {
    this.#closing ??= Promise.resolve();
    this.#sweeper.close();
    try {
      this.#listener?.close();
    } catch {
      // already closed
    }
    for (const conn of this.#conns) conn.close();
    if (this.#socketPath) await Deno.remove(this.#socketPath).catch(() => {});
  }

  /**
   * Stops accepting, lets requests in flight finish and their answers go out,
   * closes connections and removes the socket file. Idempotent.
   *
   * @param signal Aborting it stops waiting for requests in flight.
   */
  close(signal?: AbortSignal): Promise<void> {
    this.#closing ??= this.#close(signal);
    return this.#closing;
  }

  async #close(signal?: AbortSignal): Promise<void> {
    try {
      this.#listener?.close();
    } catch {
      // already closed
    }
    if (this.#inFlight > 0 && !signal?.aborted) {
      await new Promise<void>((resolve) => {
        this.#idle.push(resolve);
        signal?.addEventListener("abort", () => resolve(), { once: true });
      });
    }
    await Promise.all([...this.#conns].map((c) => c.end()));
    this.#sweeper.close();
    if (this.#socketPath) {
      try {
        await Deno.remove(this.#socketPath);
      } catch {
        // already gone
      }
    }
  }
}

// A permission the worker lacks is answered naming the flag that grants it.
function handlerErrorToWire(method: string, err: unknown): WireError {
  return permissionError(err, `Cannot call ${method}`)?.toWire() ?? errorToWire(err);
}

// A socket file left by a process that died is removed; a live one is kept
// so that listen() fails with AddrInUse.
async function removeStaleSocket(path: string): Promise<void> {
  try {
    const info = await Deno.lstat(path);
    if (!info.isSocket) return;
  } catch {
    return;
  }
  try {
    const conn = await connect({ transport: "unix", path });
    conn.close();
  } catch {
    await Deno.remove(path).catch(() => {});
  }
}
