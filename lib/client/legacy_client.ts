/**
 * A client of the original C++ proxy's protocol (legacy `CCRPC` frames), and
 * the ping-pong loop of `proxy client --legacy`.
 *
 * @module
 */

import { type Address, connectWithin } from "../net/address.ts";
import { clientTls, type TlsClientFields } from "../net/tls.ts";
import {
  encodeLegacyFrame,
  ErrorCode,
  LEGACY_BODY_BINARY,
  LEGACY_BODY_JSON,
  type LegacyFrame,
  LegacyFrameDecoder,
  ProxyError,
} from "../protocol/mod.ts";

/** Options of {@linkcode LegacyClient.connect}. */
export interface LegacyClientOptions extends TlsClientFields {
  /**
   * Largest reply body accepted, in bytes.
   * @default {8388608}
   */
  maxMessageSize?: number;
  /**
   * Milliseconds to wait for the connection; 0 waits as long as the OS does.
   * @default {0}
   */
  connectTimeout?: number;
}

/** A request given to {@linkcode LegacyClient.call}. */
export interface LegacyRequest {
  /** The function number. */
  funcNo: number;
  /** The body: a string is sent as UTF-8. */
  body: string | Uint8Array;
  /**
   * The `body_type` byte.
   * @default {LEGACY_BODY_JSON for a string, LEGACY_BODY_BINARY for bytes}
   */
  bodyType?: number;
  /**
   * The `msg_type` byte.
   * @default {0}
   */
  msgType?: number;
  /**
   * The `flow_no`, echoed in the reply.
   * @default {the next of 1, 2, 3, ...}
   */
  flowNo?: number;
}

/** Options of {@linkcode LegacyClient.call}. */
export interface LegacyCallOptions {
  /**
   * Milliseconds to wait for the reply; 0 waits forever.
   * @default {0}
   */
  timeout?: number;
}

interface Pending {
  resolve: (frame: LegacyFrame) => void;
  reject: (err: ProxyError) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

const encoder = new TextEncoder();
const INT32_MAX = 0x7fff_ffff;

/**
 * A legacy client connection. Calls may be pipelined; a reply is matched to
 * its call by `flow_no` (and, among calls with the same `flow_no`, in order).
 *
 * @example Against a proxy with one built-in worker
 * ```ts
 * import assert from "node:assert/strict";
 * import { LegacyClient } from "./legacy_client.ts";
 * import { runProxy } from "../proxy/run_proxy.ts";
 *
 * const stop = new AbortController();
 * const listening = Promise.withResolvers<string>();
 * const proxy = runProxy({
 *   port: 0,
 *   workers: 1,
 *   signal: stop.signal,
 *   onListening: listening.resolve,
 * });
 * const client = await LegacyClient.connect(await listening.promise);
 * const reply = await client.call({ funcNo: 1000, body: '{"user_id":"allen"}' });
 * assert.equal(reply.header.errNo, 0);
 * assert.equal(new TextDecoder().decode(reply.body), "handle 1000 function successful");
 * client.close();
 * stop.abort();
 * await proxy;
 * ```
 */
export class LegacyClient {
  readonly #conn: Deno.Conn;
  readonly #decoder: LegacyFrameDecoder;
  readonly #pending = new Map<number, Pending[]>();
  #nextFlow = 1;
  #writeChain: Promise<void> = Promise.resolve();
  #closed = false;
  readonly #done: Promise<void>;

  private constructor(conn: Deno.Conn, options: LegacyClientOptions) {
    this.#conn = conn;
    this.#decoder = new LegacyFrameDecoder(
      options.maxMessageSize === undefined ? {} : { maxMessageSize: options.maxMessageSize },
    );
    this.#done = this.#read();
  }

  /**
   * Connects to a server.
   *
   * @param address `HOST:PORT`, `unix:/path`, or a parsed {@linkcode Address}.
   * @param options Limits and TLS.
   * @returns The connected client.
   * @throws {ProxyError} `CONNECT_FAILED` (with the OS error as cause), `TLS_FAILED`, or `TIMEOUT`.
   */
  static async connect(
    address: string | Address,
    options: LegacyClientOptions = {},
  ): Promise<LegacyClient> {
    const tls = clientTls(options);
    const conn = await connectWithin(address, {
      timeout: options.connectTimeout ?? 0,
      ...(tls ? { tls } : {}),
    });
    return new LegacyClient(conn, options);
  }

  /** True once the connection has closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Resolves when the connection has closed. */
  get done(): Promise<void> {
    return this.#done;
  }

  /**
   * Sends one frame and resolves with the reply frame (whatever its `err_no`).
   *
   * @param request Function number, body and optional header fields.
   * @param options Timeout.
   * @returns The reply: its header and a copy of its body.
   * @throws {ProxyError} `TIMEOUT` or `CONNECTION_CLOSED`.
   * @throws {RangeError} When a header field is out of range.
   */
  call(request: LegacyRequest, options: LegacyCallOptions = {}): Promise<LegacyFrame> {
    if (this.#closed) {
      return Promise.reject(
        new ProxyError(ErrorCode.CONNECTION_CLOSED, "Cannot call: connection closed"),
      );
    }
    const body = typeof request.body === "string" ? encoder.encode(request.body) : request.body;
    const flowNo = request.flowNo ?? this.#takeFlowNo();
    const frame = encodeLegacyFrame({
      bodyType: request.bodyType ??
        (typeof request.body === "string" ? LEGACY_BODY_JSON : LEGACY_BODY_BINARY),
      msgType: request.msgType ?? 0,
      flowNo,
      funcNo: request.funcNo,
      errNo: 0,
    }, body);
    return new Promise((resolve, reject) => {
      const pending: Pending = { resolve, reject, timer: undefined };
      const timeout = options.timeout ?? 0;
      if (timeout > 0) {
        pending.timer = setTimeout(() => {
          this.#remove(flowNo, pending);
          reject(
            new ProxyError(
              ErrorCode.TIMEOUT,
              `Cannot call func ${request.funcNo}: no reply in ${timeout} ms`,
            ),
          );
        }, timeout);
      }
      const queue = this.#pending.get(flowNo);
      if (queue) queue.push(pending);
      else this.#pending.set(flowNo, [pending]);
      this.writeRaw(frame);
    });
  }

  /** Sends bytes as they are, after what was sent before (tests send broken frames). */
  writeRaw(bytes: Uint8Array): void {
    this.#writeChain = this.#writeChain.then(async () => {
      if (this.#closed) return;
      try {
        let off = 0;
        while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
      } catch {
        this.close();
      }
    });
  }

  #takeFlowNo(): number {
    const flowNo = this.#nextFlow;
    this.#nextFlow = flowNo >= INT32_MAX ? 1 : flowNo + 1;
    return flowNo;
  }

  #remove(flowNo: number, pending: Pending): void {
    const queue = this.#pending.get(flowNo);
    if (!queue) return;
    const i = queue.indexOf(pending);
    if (i >= 0) queue.splice(i, 1);
    if (queue.length === 0) this.#pending.delete(flowNo);
  }

  async #read(): Promise<void> {
    const decoder = this.#decoder;
    let failure = new ProxyError(
      ErrorCode.CONNECTION_CLOSED,
      "Cannot get reply: connection closed",
    );
    try {
      while (!this.#closed) {
        let n: number | null;
        try {
          n = await this.#conn.read(decoder.reserve());
        } catch {
          n = null;
        }
        if (n === null) break;
        decoder.commit(n);
        for (let frame = decoder.next(); frame !== null; frame = decoder.next()) {
          this.#onFrame({ header: frame.header, body: frame.body.slice() });
        }
      }
    } catch (err) {
      if (!(err instanceof ProxyError)) throw err;
      failure = err; // a reply that is not a legacy frame, or too large
    }
    this.close();
    for (const queue of this.#pending.values()) {
      for (const pending of queue) {
        clearTimeout(pending.timer);
        pending.reject(failure);
      }
    }
    this.#pending.clear();
  }

  #onFrame(frame: LegacyFrame): void {
    const queue = this.#pending.get(frame.header.flowNo);
    const pending = queue?.shift();
    if (!pending) return; // timed out already, or not ours
    if (queue!.length === 0) this.#pending.delete(frame.header.flowNo);
    clearTimeout(pending.timer);
    pending.resolve(frame);
  }

  /** Closes at once; calls in flight reject with `CONNECTION_CLOSED`. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}

/** Options of {@linkcode legacyPingPong}. */
export interface LegacyPingPongOptions {
  /** The function number. */
  funcNo: number;
  /** The body of every request. */
  body: string;
  /** How many calls; `Infinity` runs until `signal` aborts. */
  count: number;
  /** Milliseconds to wait for each reply; 0 waits forever. @default {0} */
  timeout?: number;
  /** Stops the loop; the summary still comes back. */
  signal?: AbortSignal;
  /** Called with each reply. */
  onReply?: (reply: LegacyFrame) => void;
}

/** What {@linkcode legacyPingPong} did. */
export interface LegacyPingPongSummary {
  /** Replies with `err_no` 0. */
  ok: number;
  /** Replies with another `err_no`. */
  failed: number;
  /** Wall time in seconds. */
  seconds: number;
  /** Calls per second. */
  rate: number;
  /** What stopped the loop early (connection closed, timeout), if anything did. */
  error: ProxyError | undefined;
}

/**
 * Sends the same request again and again, each when the last reply is in,
 * like the original C++ client.
 *
 * @param client A connected client.
 * @param options What to send, how often, and a callback per reply.
 * @returns Counts and rate.
 */
export async function legacyPingPong(
  client: LegacyClient,
  options: LegacyPingPongOptions,
): Promise<LegacyPingPongSummary> {
  const start = performance.now();
  let ok = 0;
  let failed = 0;
  let error: ProxyError | undefined;
  let onAbort: (() => void) | undefined;
  const abort = new Promise<"aborted">((resolve) => {
    onAbort = () => resolve("aborted");
    options.signal?.addEventListener("abort", onAbort, { once: true });
  });
  try {
    for (let i = 0; i < options.count && !options.signal?.aborted; i++) {
      let reply: LegacyFrame | "aborted";
      try {
        const call = client.call({ funcNo: options.funcNo, body: options.body }, {
          timeout: options.timeout ?? 0,
        });
        reply = await Promise.race([call, abort]);
        if (reply === "aborted") call.catch(() => {}); // its reply no longer matters
      } catch (err) {
        error = err instanceof ProxyError
          ? err
          : new ProxyError(ErrorCode.CONNECTION_CLOSED, String(err));
        break;
      }
      if (reply === "aborted") break;
      if (reply.header.errNo === 0) ok++;
      else failed++;
      options.onReply?.(reply);
    }
  } finally {
    if (onAbort) options.signal?.removeEventListener("abort", onAbort);
  }
  const seconds = (performance.now() - start) / 1000;
  return { ok, failed, seconds, rate: seconds > 0 ? (ok + failed) / seconds : 0, error };
}

/**
 * The line `proxy client --legacy` prints per reply, as the original client did.
 *
 * @param reply The reply frame.
 * @returns `func_no: F, flow_no: N, content: BODY`.
 *
 * @example Usage
 * ```ts
 * import { formatLegacyReply } from "./legacy_client.ts";
 * const header = {
 *   bodyType: 0x30, msgType: 0, flowNo: 1, funcNo: 1000, errNo: 0, bodyLen: 2, originLen: 2,
 * };
 * console.log(formatLegacyReply({ header, body: new TextEncoder().encode("ok") }));
 * // func_no: 1000, flow_no: 1, content: ok
 * ```
 */
export function formatLegacyReply(reply: LegacyFrame): string {
  const content = new TextDecoder().decode(reply.body);
  return `func_no: ${reply.header.funcNo}, flow_no: ${reply.header.flowNo}, content: ${content}`;
}
