/**
 * One connection of a client of the original C++ proxy (legacy `CCRPC`
 * frames), served on the proxy's MessagePack-RPC port.
 *
 * Each frame becomes a `legacy.call` request to the worker of its user (the
 * body's `user_id` is the routing key), except func 2000, answered here.
 * Replies go out in the order of the requests, whatever order workers answer
 * in; at most `maxInFlight` frames are in flight per connection, and reading
 * pauses beyond that or while the client does not read its replies.
 *
 * @module
 */

import { FrameConnection } from "../net/frame_connection.ts";
import { getLogger } from "../log.ts";
import {
  decodeMessage,
  DEFAULT_MAX_MESSAGE_SIZE,
  encodeLegacyFrame,
  encodeRequest,
  ErrorCode,
  LEGACY_BODY_JSON,
  LEGACY_ERR_ILLEGAL,
  LEGACY_ERR_ILLEGAL_TEXT,
  LEGACY_ERR_NO_USER,
  LEGACY_ERR_NO_USER_TEXT,
  LEGACY_ERR_UNKNOWN,
  LEGACY_ERR_UNKNOWN_TEXT,
  LEGACY_FUNC_PROXY,
  LEGACY_PROXY_REPLY,
  legacyErrorBody,
  type LegacyFrame,
  LegacyFrameDecoder,
  type LegacyHeader,
  type ProxyError,
  replyHeaderFor,
  requestTail,
  RESPONSE,
  toWireError,
  type WireError,
} from "../protocol/mod.ts";
import type { Requester } from "../dispatch/call.ts";
import {
  LEGACY_CALL_METHOD,
  type LegacyCallRequest,
  UNKNOWN_FUNCTION,
} from "../backend/legacy_methods.ts";
import type { ConnectionContext, ServedConnection } from "./proxy_server.ts";
import type { SessionDispatch } from "./client_session.ts";

/** Frames one legacy connection may have in flight before reading pauses. */
export const DEFAULT_LEGACY_MAX_IN_FLIGHT = 128;

/**
 * What a legacy session needs of the dispatcher (what a MessagePack-RPC
 * session needs, notifications aside). `key` routes: in the `dedicated`
 * pool mode, requests with the same key reach the same worker.
 */
export type LegacyPool = Pick<SessionDispatch, "submit" | "forget">;

/** Options of {@linkcode LegacySession}. */
export interface LegacySessionOptions {
  /** Where requests go. */
  pool: LegacyPool;
  /** True once the proxy is stopping: new frames get -2. @default {() => false} */
  draining?: () => boolean;
  /**
   * Largest body accepted; a bigger `body_len` gets -1 and the connection closes.
   * @default {8388608}
   */
  maxMessageSize?: number;
  /** Bytes already read from the connection (while sniffing the protocol). */
  initial?: Uint8Array;
  /**
   * Frames in flight (read but not yet answered) before reading pauses.
   * @default {128}
   */
  maxInFlight?: number;
  /**
   * Pending output above which reading pauses until the client reads again.
   * @default {4194304}
   */
  highWaterMark?: number;
}

/** A legacy error: its number and text. */
export interface LegacyError {
  /** The `err_no`: -1, -2 or -3. */
  errNo: number;
  /** Its text, as the original spells it. */
  text: string;
}

const UNKNOWN: LegacyError = { errNo: LEGACY_ERR_UNKNOWN, text: LEGACY_ERR_UNKNOWN_TEXT };
const ILLEGAL: LegacyError = { errNo: LEGACY_ERR_ILLEGAL, text: LEGACY_ERR_ILLEGAL_TEXT };
const NO_USER: LegacyError = { errNo: LEGACY_ERR_NO_USER, text: LEGACY_ERR_NO_USER_TEXT };

/**
 * The legacy error for a MessagePack-RPC error code: `UNKNOWN_FUNCTION` and
 * `METHOD_NOT_FOUND` are -1 `unknow request`; anything else (no worker,
 * worker exited, queue full, timeout, shutting down, a handler error) is -2
 * `illegal request`.
 *
 * @param code The error's code.
 * @returns The legacy error number and text.
 *
 * @example Usage
 * ```ts
 * import { legacyErrorFor } from "./legacy_session.ts";
 * console.log(legacyErrorFor("UNKNOWN_FUNCTION").errNo); // -1
 * console.log(legacyErrorFor("WORKER_EXITED").text); // illegal request
 * ```
 */
export function legacyErrorFor(code: string): LegacyError {
  return code === UNKNOWN_FUNCTION || code === ErrorCode.METHOD_NOT_FOUND ? UNKNOWN : ILLEGAL;
}

/**
 * The `user_id` of a legacy body: the body must be a JSON object with a
 * non-empty string `user_id`.
 *
 * @param text The body as text.
 * @returns The user id, or `undefined` when there is none.
 *
 * @example Usage
 * ```ts
 * import { userIdOf } from "./legacy_session.ts";
 * console.log(userIdOf('{"user_id":"allen"}')); // allen
 * console.log(userIdOf('{"user":"allen"}')); // undefined
 * ```
 */
export function userIdOf(text: string): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  const id = (value as Record<string, unknown>).user_id;
  return typeof id === "string" && id !== "" ? id : undefined;
}

// A frame read and not yet answered, in arrival order.
interface Slot {
  header: LegacyHeader;
  msgid: number; // -1 when not at the pool
  reply: Uint8Array | null; // the encoded reply, once known
}

// Header of the reply to a frame whose own header is unreadable (a bad tag).
const UNREADABLE: LegacyHeader = {
  bodyType: LEGACY_BODY_JSON,
  msgType: 0,
  flowNo: 0,
  funcNo: 0,
  errNo: 0,
  bodyLen: 0,
  originLen: 0,
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const log = getLogger(["legacy"]);
const PROXY_REPLY_BYTES = encoder.encode(LEGACY_PROXY_REPLY);
const ILLEGAL_BODY = encoder.encode(legacyErrorBody(ILLEGAL.errNo, ILLEGAL.text));

/**
 * A legacy client connection: reads frames, sends each on as a `legacy.call`
 * through the pool (as a {@linkcode Requester}), and writes the replies in
 * request order. It runs on the same framed-connection core as MessagePack
 * clients (batched writes, backpressure, time limits), with the legacy frame
 * decoder. Start it with {@linkcode LegacySession.run}.
 *
 * A frame with a wrong tag or a `body_len` above the limit is answered -1
 * (after the replies owed before it), then the connection closes; other
 * connections are not affected.
 */
export class LegacySession implements Requester, ServedConnection {
  readonly #pool: LegacyPool;
  readonly #draining: () => boolean;
  readonly #decoder: LegacyFrameDecoder;
  readonly #conn: FrameConnection<LegacyFrame>;
  readonly #maxMessageSize: number;
  readonly #maxInFlight: number;
  readonly #slots: Slot[] = []; // in request order
  readonly #pending = new Map<number, Slot>(); // msgid -> slot at the pool
  #nextMsgid = 1;
  #inputEnded = false; // end of input, a bad frame, or end(): read no more
  #waitingForFlush = false;
  #closed = false;

  /**
   * @param conn The client's connection.
   * @param options The pool, limits and bytes already read.
   * @throws {RangeError} When `maxInFlight` is not a positive integer.
   */
  constructor(conn: Deno.Conn, options: LegacySessionOptions) {
    this.#pool = options.pool;
    this.#draining = options.draining ?? (() => false);
    this.#maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.#decoder = new LegacyFrameDecoder({ maxMessageSize: this.#maxMessageSize });
    this.#maxInFlight = options.maxInFlight ?? DEFAULT_LEGACY_MAX_IN_FLIGHT;
    if (!Number.isSafeInteger(this.#maxInFlight) || this.#maxInFlight < 1) {
      throw new RangeError(
        `Cannot create legacy session: maxInFlight must be a positive integer, got ${this.#maxInFlight}`,
      );
    }
    this.#conn = new FrameConnection<LegacyFrame>(conn, {
      decoder: this.#decoder,
      ...(options.initial === undefined ? {} : { initial: options.initial }),
      highWaterMark: options.highWaterMark ?? 4 * 1024 * 1024,
      onFrame: (frame) => this.#onFrame(frame),
      onProtocolError: (err) => this.#onBadStream(err),
      onEof: () => this.#endInput(),
      onClose: () => this.close(),
    });
    this.#conn.setBusyCheck(() => this.#slots.length > 0);
  }

  /** True once the connection has closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Resolves once the connection has closed. */
  get done(): Promise<void> {
    return this.#conn.done;
  }

  /** Frames read and not yet answered. */
  get inFlight(): number {
    return this.#slots.length;
  }

  /** Bytes waiting to be written. */
  get pendingBytes(): number {
    return this.#conn.pendingBytes;
  }

  /** The connection, for the server's time limits. */
  get connection(): FrameConnection<LegacyFrame> {
    return this.#conn;
  }

  /** Reads and serves frames until the input ends or the connection closes. */
  async run(): Promise<void> {
    await this.#conn.run();
  }

  #onFrame(frame: LegacyFrame): void {
    const header = frame.header;
    const slot: Slot = { header, msgid: -1, reply: null };
    this.#slots.push(slot);
    this.#updatePause();
    if (this.#draining()) {
      this.#answerError(slot, ILLEGAL);
      return;
    }
    if (header.funcNo === LEGACY_FUNC_PROXY) {
      this.#answer(slot, 0, PROXY_REPLY_BYTES);
      return;
    }
    const text = decoder.decode(frame.body);
    const userId = userIdOf(text);
    if (userId === undefined) {
      this.#answerError(slot, NO_USER);
      return;
    }
    const msgid = this.#nextMsgid;
    this.#nextMsgid = this.#nextMsgid >= 0x7fff_ffff ? 1 : this.#nextMsgid + 1;
    const request: LegacyCallRequest = {
      func_no: header.funcNo,
      flow_no: header.flowNo,
      user_id: userId,
      // The body is a view into the decoder's buffer: bin is copied by encoding it.
      body: header.bodyType === LEGACY_BODY_JSON ? text : frame.body,
    };
    const call = encodeRequest(msgid, LEGACY_CALL_METHOD, [request]);
    if (call.length > this.#maxMessageSize) {
      // A worker would refuse it and drop its connection, failing others' requests too.
      log.debug(
        `Legacy request flow_no ${header.flowNo}: the call of ${call.length} bytes exceeds the limit of ${this.#maxMessageSize}`,
      );
      this.#answerError(slot, UNKNOWN);
      return;
    }
    slot.msgid = msgid;
    this.#pending.set(msgid, slot);
    try {
      this.#pool.submit(this, msgid, LEGACY_CALL_METHOD, call, requestTail(msgid), userId);
    } catch (err) {
      this.fail(msgid, {
        code: ErrorCode.HANDLER_ERROR,
        message: `Cannot submit: ${err instanceof Error ? err.message : String(err)}`,
      });
    }
  }

  // A frame that cannot be read: -1 after what is owed, then close.
  #onBadStream(err: ProxyError): void {
    const header = err.code === ErrorCode.MESSAGE_TOO_LARGE
      ? this.#decoder.pendingHeader() ?? UNREADABLE
      : UNREADABLE;
    log.debug(`Legacy connection: ${err.message}; closing it`);
    const slot: Slot = { header, msgid: -1, reply: null };
    this.#slots.push(slot);
    this.#answerError(slot, UNKNOWN);
  }

  /** A worker's response to `legacy.call`: its result is the reply body. */
  deliver(msgid: number, frame: Uint8Array, _tail: number): void {
    const slot = this.#pending.get(msgid);
    if (slot === undefined) return;
    this.#pending.delete(msgid);
    let error: WireError | null = null;
    let body: Uint8Array = new Uint8Array();
    try {
      const msg = decodeMessage(frame);
      if (msg.type !== RESPONSE) throw new TypeError("Cannot use message: not a response");
      if (msg.error !== null && msg.error !== undefined) error = toWireError(msg.error);
      else body = bodyOf(msg.result);
    } catch (err) {
      error = { code: ErrorCode.INVALID_REQUEST, message: (err as Error).message };
    }
    if (error) this.#fail(slot, error);
    else this.#answer(slot, 0, body);
  }

  /** The pool could not get an answer (no worker, worker exited, queue full, ...): -2. */
  fail(msgid: number, error: WireError): void {
    const slot = this.#pending.get(msgid);
    if (slot === undefined) return;
    this.#pending.delete(msgid);
    this.#fail(slot, error);
  }

  #fail(slot: Slot, error: WireError): void {
    const mapped = legacyErrorFor(error.code);
    log.debug(
      `Legacy request flow_no ${slot.header.flowNo} func_no ${slot.header.funcNo} answered ${mapped.errNo}: ${error.code}: ${error.message}`,
    );
    this.#answerError(slot, mapped);
  }

  #answerError(slot: Slot, error: LegacyError): void {
    this.#answer(slot, error.errNo, encoder.encode(legacyErrorBody(error.errNo, error.text)));
  }

  #answer(slot: Slot, errNo: number, body: Uint8Array): void {
    slot.reply = encodeLegacyFrame(replyHeaderFor(slot.header, errNo, body.length), body);
    this.#release();
  }

  // Writes the replies that are next in line.
  #release(): void {
    const slots = this.#slots;
    let released = false;
    while (slots.length > 0 && slots[0]!.reply !== null) {
      this.#conn.write(slots.shift()!.reply!);
      released = true;
    }
    if (released) this.#afterProgress();
  }

  // After replies were queued: close when done, else pause or resume reading.
  #afterProgress(): void {
    if (this.#closed) return;
    if (this.#inputEnded && this.#slots.length === 0) {
      void this.#conn.end();
      return;
    }
    this.#updatePause();
  }

  // Reading pauses at maxInFlight frames, and while the client does not read its replies.
  #updatePause(): void {
    const conn = this.#conn;
    if (conn.congested && !this.#waitingForFlush) {
      this.#waitingForFlush = true;
      void conn.flushed().then(() => {
        this.#waitingForFlush = false;
        this.#afterProgress();
      });
    }
    conn.setReadPaused(this.#waitingForFlush || this.#slots.length >= this.#maxInFlight);
  }

  #endInput(): void {
    this.#inputEnded = true;
    this.#conn.stopReading();
    this.#afterProgress();
  }

  /**
   * Stops reading, answers -2 to every frame still waiting for a worker,
   * writes what is owed, then closes. Idempotent.
   */
  end(): Promise<void> {
    if (this.#closed) return this.done;
    this.#inputEnded = true;
    this.#conn.stopReading();
    for (const slot of this.#slots) {
      if (slot.reply !== null) continue;
      if (slot.msgid >= 0) this.#pending.delete(slot.msgid);
      slot.reply = encodeLegacyFrame(
        replyHeaderFor(slot.header, ILLEGAL.errNo, ILLEGAL_BODY.length),
        ILLEGAL_BODY,
      );
    }
    this.#release();
    this.#afterProgress();
    return this.done;
  }

  /** Closes at once, dropping what is owed. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#inputEnded = true;
    this.#pending.clear();
    this.#slots.length = 0;
    this.#conn.close();
    this.#pool.forget(this);
  }
}

// A worker's result as a reply body: text and bytes as they are, anything else as JSON.
function bodyOf(result: unknown): Uint8Array {
  if (typeof result === "string") return encoder.encode(result);
  if (result instanceof Uint8Array) return result;
  if (result === null || result === undefined) return new Uint8Array();
  return encoder.encode(JSON.stringify(result));
}

/**
 * The proxy's handler for legacy connections (pass it as `legacyHandler` to
 * `ProxyServer`): serves `raw` as a {@linkcode LegacySession}.
 *
 * @param raw The client's connection.
 * @param initial The bytes already read while sniffing the protocol.
 * @param context The pool, the draining flag and the message size limit.
 * @returns The served connection.
 */
export function serveLegacy(
  raw: Deno.Conn,
  initial: Uint8Array,
  context: ConnectionContext,
): ServedConnection {
  const session = new LegacySession(raw, {
    pool: context.pool,
    draining: context.draining,
    maxMessageSize: context.maxMessageSize,
    highWaterMark: context.writeBufferLimit,
    maxInFlight: context.legacyPipeline,
    initial,
  });
  session.run().catch((err) => {
    log.error(`Legacy connection failed: ${err instanceof Error ? err.message : String(err)}`);
    session.close();
  });
  return session;
}
