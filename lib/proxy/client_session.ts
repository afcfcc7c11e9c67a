/**
 * One MessagePack-RPC client connection of the proxy: the adapter between the
 * framed-connection core and the dispatcher.
 *
 * @module
 */

import { FrameConnection } from "../net/frame_connection.ts";
import type { TokenVerifier } from "../auth/token_set.ts";
import {
  AUTH_METHOD,
  createEnvelope,
  decodeValue,
  encodeError,
  encodeResult,
  ErrorCode,
  type ErrorFormat,
  type InvalidMessageError,
  NOTIFICATION,
  peekRequestMsgid,
  readAuthToken,
  readEnvelope,
  readRouteKey,
  REQUEST,
  RESPONSE,
  type WireError,
} from "../protocol/mod.ts";
import type { Requester } from "../dispatch/call.ts";

/** Where a session's requests go (the worker pool, or any dispatcher). */
export interface SessionDispatch {
  /** Forwards a whole request frame; `tail` is the offset after its msgid. */
  submit(
    requester: Requester,
    msgid: number,
    method: string,
    frame: Uint8Array,
    tail: number,
    key?: string,
  ): void;
  /** Forwards a notification frame. */
  notify(requester: Requester, method: string, frame: Uint8Array, key?: string): void;
  /** Drops what a requester that went away still has queued or in flight. */
  forget(requester: Requester): void;
}

/** Why a connection failed to authenticate. */
export type AuthFailure = "token" | "order" | "timeout";

/** Token authentication, when the proxy asks for it. */
export interface SessionAuth {
  /** The tokens accepted. */
  tokens: TokenVerifier;
  /** Milliseconds a connection may take to authenticate. */
  timeoutMs: number;
  /** Largest message accepted before a connection has authenticated. */
  maxMessageSize: number;
  /**
   * A connection failed: a token not accepted, another message first
   * (`order`), or no `proxy.auth` in time.
   */
  onFailure(why: AuthFailure): void;
}

/** What the server gives each session. */
export interface SessionContext {
  /** Where requests go. */
  dispatch: SessionDispatch;
  /** True once the proxy is stopping: new requests get `SHUTTING_DOWN`. */
  draining: () => boolean;
  /** Answers a `proxy.*` method (the frame is valid only during the call). */
  local: (
    session: ClientSession,
    msgid: number,
    method: string,
    frame: Uint8Array,
    body: number,
  ) => void;
  /** The path of the routing key in `params[0]`, when requests are routed by key. */
  routePath: readonly string[] | undefined;
  /** How errors are written. */
  errorFormat: ErrorFormat;
  /** Requests one connection may have in flight before it stops being read. */
  maxInFlight: number;
  /** Largest message accepted. */
  maxMessageSize: number;
  /** Output held for the client above which it stops being read. */
  writeBufferLimit: number;
  /** When given, the first message must be `proxy.auth` with an accepted token. */
  auth?: SessionAuth | undefined;
}

/** Method names starting with this are answered by the proxy, never forwarded. */
export const PROXY_METHOD_PREFIX = "proxy.";

const envelope = createEnvelope();

/**
 * A client connection as a {@linkcode Requester}: answers go back with the
 * client's own msgid. Reading pauses while the client has `maxInFlight`
 * requests unanswered or does not read its answers, so a greedy or slow
 * client slows itself down and nobody else, and the proxy never buffers for
 * it without bound.
 */
export class ClientSession implements Requester {
  /** Connection number, for logs. */
  readonly id: number;
  readonly #context: SessionContext;
  readonly #conn: FrameConnection;
  #owed = 0; // answers still to send
  #eof = false;
  #waitingForFlush = false;
  #authenticated: boolean;
  #authTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * @param id Connection number.
   * @param raw The client's connection.
   * @param context The dispatcher, limits and local methods.
   * @param initial Bytes already read while sniffing the protocol.
   */
  constructor(id: number, raw: Deno.Conn, context: SessionContext, initial?: Uint8Array) {
    this.id = id;
    this.#context = context;
    this.#conn = new FrameConnection(raw, {
      maxMessageSize: context.maxMessageSize,
      highWaterMark: context.writeBufferLimit,
      ...(initial === undefined ? {} : { initial }),
      onFrame: (frame) => this.#onFrame(frame),
      onProtocolError: (err, partial) => {
        const msgid = peekRequestMsgid(partial);
        if (msgid !== undefined) {
          this.#conn.write(encodeError(msgid, err.toWire(), context.errorFormat));
        }
      },
      onEof: () => this.#onEof(),
      onClose: () => {
        clearTimeout(this.#authTimer);
        context.dispatch.forget(this);
      },
    });
    this.#conn.setBusyCheck(() => this.#owed > 0);
    const auth = context.auth;
    this.#authenticated = auth === undefined;
    if (auth) {
      // A token is small: until it is in, nobody gets to make the proxy buffer megabytes.
      this.#conn.setMessageLimit(Math.min(auth.maxMessageSize, context.maxMessageSize));
      this.#authTimer = setTimeout(() => {
        auth.onFailure("timeout");
        this.#conn.close();
      }, auth.timeoutMs);
    }
  }

  /** The connection (for the server's bookkeeping and time limits). */
  get connection(): FrameConnection {
    return this.#conn;
  }

  /** True once the connection has closed. */
  get closed(): boolean {
    return this.#conn.closed;
  }

  /** The read its requests now come from: they may be kept on one host. */
  get batch(): number {
    return this.#conn.reads;
  }

  /** Answers this session still owes. */
  get owed(): number {
    return this.#owed;
  }

  /** Reads and serves requests until the client is done. */
  run(): Promise<void> {
    return this.#conn.run().catch(() => this.#conn.close());
  }

  #onFrame(frame: Uint8Array): void {
    const context = this.#context;
    try {
      readEnvelope(frame, envelope);
    } catch (err) {
      const e = err as InvalidMessageError;
      if (e.msgid !== undefined) {
        this.#conn.write(encodeError(e.msgid, e.toWire(), context.errorFormat));
      }
      // Nothing after it is trusted; answers owed for earlier requests still go out.
      this.#onEof();
      return;
    }
    const { type, msgid, method } = envelope;
    if (!this.#authenticated || (type === REQUEST && method === AUTH_METHOD)) {
      this.#authenticate(frame);
      return;
    }
    if (type === REQUEST) {
      this.#owed++;
      if (this.#owed >= context.maxInFlight) this.#updatePause();
      if (method.startsWith(PROXY_METHOD_PREFIX)) {
        context.local(this, msgid, method, frame, envelope.body);
      } else if (context.draining()) {
        this.fail(msgid, {
          code: ErrorCode.SHUTTING_DOWN,
          message: "Cannot forward request: the proxy is shutting down",
        });
      } else if (context.routePath) {
        const key = readRouteKey(frame, envelope.body, context.routePath);
        context.dispatch.submit(this, msgid, method, frame, envelope.tail, key);
      } else context.dispatch.submit(this, msgid, method, frame, envelope.tail);
    } else if (type === NOTIFICATION && method !== AUTH_METHOD && !context.draining()) {
      // (proxy.auth as a notification is dropped: a token never reaches a worker.)
      const key = context.routePath
        ? readRouteKey(frame, envelope.body, context.routePath)
        : undefined;
      context.dispatch.notify(this, method, frame, key);
    }
    // A response from a client answers nothing of ours: ignored.
  }

  // The first message must be proxy.auth with an accepted token; anything
  // else is refused and the connection closes once the refusal is out, so
  // nothing of an unauthenticated client is ever forwarded.
  #authenticate(frame: Uint8Array): void {
    const { type, msgid, method } = envelope;
    const auth = this.#context.auth;
    if (type !== REQUEST) {
      // A notification (or a response) first: nothing to answer.
      auth?.onFailure("order");
      this.#conn.close();
      return;
    }
    this.#owed++;
    if (method !== AUTH_METHOD) {
      auth?.onFailure("order");
      this.#refuse(
        msgid,
        `Cannot call ${method}: authenticate first (${AUTH_METHOD} with a token)`,
      );
      return;
    }
    // Without auth, proxy.auth succeeds: clients can get their token before
    // the proxy starts asking for it.
    if (!auth) {
      this.reply(encodeResult(msgid, true));
      return;
    }
    let token: Uint8Array | null = null;
    try {
      token = readAuthToken(decodeValue(frame, { start: envelope.body, maxDepth: 4 }));
    } catch {
      // params that do not decode hold no token
    }
    if (token === null || !auth.tokens.verify(token)) {
      auth.onFailure("token");
      this.#refuse(msgid, "Cannot authenticate: the token is not accepted");
      return;
    }
    this.#authenticated = true;
    clearTimeout(this.#authTimer);
    this.#conn.setMessageLimit(this.#context.maxMessageSize);
    this.reply(encodeResult(msgid, true));
  }

  // Answers UNAUTHENTICATED, then closes (reading stops at once).
  #refuse(msgid: number, message: string): void {
    this.#onEof();
    this.fail(msgid, { code: ErrorCode.UNAUTHENTICATED, message });
  }

  /** Sends a worker's response under the client's msgid. */
  deliver(msgid: number, frame: Uint8Array, tail: number): void {
    this.#conn.writeWithMsgid(RESPONSE, msgid, frame, tail);
    this.#answered();
  }

  /** Answers with an error. */
  fail(msgid: number, error: WireError): void {
    this.#conn.write(encodeError(msgid, error, this.#context.errorFormat));
    this.#answered();
  }

  /** Answers with an encoded response frame made by the proxy itself. */
  reply(frame: Uint8Array): void {
    this.#conn.write(frame);
    this.#answered();
  }

  #answered(): void {
    this.#owed--;
    if (this.#eof && this.#owed <= 0) {
      void this.#conn.end();
      return;
    }
    this.#updatePause();
  }

  #updatePause(): void {
    const conn = this.#conn;
    if (conn.closed) return;
    if (conn.congested && !this.#waitingForFlush) {
      this.#waitingForFlush = true;
      void conn.flushed().then(() => {
        this.#waitingForFlush = false;
        this.#updatePause();
      });
    }
    conn.setReadPaused(this.#waitingForFlush || this.#owed >= this.#context.maxInFlight);
  }

  // The client ended its side (or sent something untrustworthy): close once
  // every owed answer is out.
  #onEof(): void {
    this.#eof = true;
    this.#conn.stopReading();
    if (this.#owed <= 0) void this.#conn.end();
  }

  /** Writes what is owed, then closes. */
  end(): Promise<void> {
    return this.#conn.end();
  }

  /** Closes at once. */
  close(): void {
    this.#conn.close();
  }

  /** Resolves once closed. */
  get done(): Promise<void> {
    return this.#conn.done;
  }
}
