/**
 * The MessagePack-RPC server behind `proxy backend`.
 *
 * @module
 */

import { acceptEach, type Address, connect, listen, listenerAddress } from "../net/address.ts";
import { FrameConnection } from "../net/frame_connection.ts";
import {
  decodeMessage,
  encodeError,
  encodeResult,
  ErrorCode,
  errorToWire,
  type InvalidMessageError,
  type Message,
  NOTIFICATION,
  peekRequestMsgid,
  ProxyError,
  REQUEST,
} from "../protocol/mod.ts";
import type { Methods } from "./methods.ts";

/** Options of {@linkcode BackendServer}. */
export interface BackendServerOptions {
  /** Where to listen. */
  address: Address;
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
}

/**
 * Serves methods over MessagePack-RPC on a Unix socket or TCP. Requests on one
 * connection run concurrently and are answered as they finish.
 */
export class BackendServer {
  readonly #options: BackendServerOptions;
  #listener: Deno.Listener | null = null;
  readonly #conns = new Set<FrameConnection>();
  #requests = 0;
  #inFlight = 0;
  #idle: (() => void)[] = [];
  #closing: Promise<void> | null = null;
  #socketPath: string | null = null;

  /** @param options Where to listen and what to serve. */
  constructor(options: BackendServerOptions) {
    this.#options = options;
  }

  /** Requests answered so far. */
  get requests(): number {
    return this.#requests;
  }

  /** Requests being served now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Starts listening; for a Unix socket, a stale socket file nobody listens
   * on is replaced.
   *
   * @returns The bound address (with the real port when port 0 was asked).
   * @throws {Deno.errors.AddrInUse} When another server listens there.
   */
  async listen(): Promise<Address> {
    const address = this.#options.address;
    if (address.transport === "unix") await removeStaleSocket(address.path);
    this.#listener = listen(address);
    if (address.transport === "unix") this.#socketPath = address.path;
    void this.#accept(this.#listener);
    return listenerAddress(this.#listener);
  }

  async #accept(listener: Deno.Listener): Promise<void> {
    await acceptEach(listener, (conn) => {
      if (this.#closing) conn.close();
      else this.#serve(conn);
    });
  }

  #serve(raw: Deno.Conn): void {
    let pending = 0; // answers owed on this connection
    let eof = false;
    let broken = false; // a bad frame arrived: serve nothing after it
    let paused = false;
    const conn: FrameConnection = new FrameConnection(raw, {
      ...(this.#options.maxMessageSize === undefined
        ? {}
        : { maxMessageSize: this.#options.maxMessageSize }),
      ...(this.#options.writeBufferLimit === undefined
        ? {}
        : { highWaterMark: this.#options.writeBufferLimit }),
      onFrame: (frame) => {
        if (broken) return;
        let msg: Message;
        try {
          msg = decodeMessage(frame);
        } catch (err) {
          const e = err as InvalidMessageError;
          if (e.msgid !== undefined) conn.write(encodeError(e.msgid, e.toWire()));
          // The stream cannot be trusted any more; requests before it still get answers.
          broken = true;
          conn.stopReading();
          if (pending === 0) void conn.end();
          return;
        }
        if (msg.type === REQUEST) {
          pending++;
          this.#inFlight++;
          void this.#dispatch(msg.method, msg.params).then((answer) => {
            this.#requests++;
            this.#inFlight--;
            pending--;
            conn.write(
              answer.error
                ? encodeError(msg.msgid, answer.error)
                : encodeResult(msg.msgid, answer.result),
            );
            if ((eof || broken) && pending === 0) void conn.end();
            else if (!paused && conn.congested) {
              // The client does not read its answers: stop taking requests until it does.
              paused = true;
              conn.setReadPaused(true);
              void conn.flushed().then(() => {
                paused = false;
                conn.setReadPaused(false);
              });
            }
            if (this.#inFlight === 0) this.#notifyIdle();
          });
        } else if (msg.type === NOTIFICATION) {
          if (msg.method === "shutdown") this.#options.onShutdownRequest?.();
          else void this.#dispatch(msg.method, msg.params);
        }
        // Responses from a client are ignored: a backend calls no one.
      },
      onProtocolError: (err, partial) => {
        const msgid = peekRequestMsgid(partial);
        if (msgid !== undefined) conn.write(encodeError(msgid, err.toWire()));
      },
      onEof: () => {
        eof = true;
        if (pending === 0) void conn.end();
      },
      onClose: () => this.#conns.delete(conn),
    });
    this.#conns.add(conn);
    conn.run().catch(() => conn.close());
  }

  async #dispatch(
    method: string,
    params: unknown[],
  ): Promise<{ error?: ReturnType<typeof errorToWire>; result?: unknown }> {
    const fn = Object.hasOwn(this.#options.methods, method)
      ? this.#options.methods[method]
      : undefined;
    if (!fn) {
      return {
        error: new ProxyError(ErrorCode.METHOD_NOT_FOUND, `Cannot call ${method}: no such method`)
          .toWire(),
      };
    }
    try {
      return { result: await fn(...params) };
    } catch (err) {
      return { error: errorToWire(err) };
    }
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
    if (this.#socketPath) {
      try {
        await Deno.remove(this.#socketPath);
      } catch {
        // already gone
      }
    }
  }
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
