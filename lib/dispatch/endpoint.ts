/**
 * An endpoint: one multiplexed MessagePack-RPC connection to anything that
 * answers (a spawned worker's Unix socket, a remote server over TCP or
 * Unix). It owns the msgid map, counts requests in flight and unwritten
 * bytes, and reports answers and its end; it does not know what is at the
 * other end.
 *
 * @module
 */

import { FrameConnection } from "../net/frame_connection.ts";
import {
  createEnvelope,
  encodeError,
  encodeNotification,
  encodeRequest,
  ErrorCode,
  type ErrorFormat,
  NOTIFICATION,
  ProxyError,
  readEnvelope,
  REQUEST,
  requestTail,
  RESPONSE,
  type WireError,
} from "../protocol/mod.ts";
import { getLogger } from "../log.ts";
import { Call, type Requester } from "./call.ts";
import { PendingTable } from "../net/pending_table.ts";
import type { ServicePace } from "./service_pace.ts";

/** Options of {@linkcode Endpoint}. */
export interface EndpointOptions {
  /** For logs and errors: `worker 3 (pid 42)`, `127.0.0.1:9000`. */
  label: string;
  /** Largest message accepted from the peer. @default {8388608} */
  maxMessageSize?: number;
  /**
   * Unwritten bytes above which the endpoint takes no new requests (the peer
   * does not read): `writable` turns false.
   * @default {4194304}
   */
  writeLimit?: number;
  /** How to write errors when answering a request the peer sent us. @default {"map"} */
  errorFormat?: ErrorFormat;
  /** The clock for latencies (ms). @default {performance.now} */
  now?: () => number;
  /**
   * Measure each answer's round-trip time (a clock read per answer, so only
   * when a balancer uses latencies).
   * @default {false}
   */
  timed?: boolean;
  /**
   * Told of every request sent with `send` and of its end (the proxy's own
   * requests left out), so that a host's pace counts only its real work.
   */
  pace?: ServicePace;
  /** After each answer delivered, with its round-trip time in ms (0 when not timed). */
  onAnswer?: (endpoint: Endpoint, call: Call, elapsedMs: number) => void;
  /**
   * When the peer answered a call already answered `TIMEOUT` or cancelled:
   * it carries less load now, and may take another.
   */
  onFreed?: (endpoint: Endpoint) => void;
  /** Once, when the connection has closed, with the calls never answered. */
  onClose?: (endpoint: Endpoint, orphans: Call[]) => void;
  /** When the peer broke the protocol (the connection is closed after). */
  onProtocolError?: (endpoint: Endpoint, message: string) => void;
}

const envelope = createEnvelope();
const log = getLogger(["endpoint"]);

/**
 * One connection. Requests go in with {@linkcode Endpoint.send} under
 * msgids of its own; answers go back to each call's requester with the
 * requester's msgid.
 */
export class Endpoint {
  readonly #conn: FrameConnection;
  readonly #options: EndpointOptions;
  readonly #writeLimit: number;
  readonly #now: () => number;
  readonly #timed: boolean;
  readonly #pace: ServicePace | undefined;
  // By the msgid we gave: a table, not a Map (see PendingTable for why).
  readonly #pending = new PendingTable<Call>();
  // Calls answered TIMEOUT that the peer has not answered yet: they still
  // load it (it is not idle because they timed out); late answers are dropped.
  readonly #overdue = new Map<number, Call>();
  // Calls of requesters that went away: their places free at once, but they
  // are watched (a peer stuck on one is still caught) and late answers dropped.
  readonly #cancelled = new Map<number, Call>();
  readonly #internal = new Set<Call>(); // the proxy's own requests (ping, health)
  #served = 0;
  #closed = false;

  /**
   * @param conn An open connection.
   * @param options Label, limits and whom to tell.
   */
  constructor(conn: Deno.Conn, options: EndpointOptions) {
    this.#options = options;
    this.#writeLimit = options.writeLimit ?? 4 * 1024 * 1024;
    this.#now = options.now ?? (() => performance.now());
    this.#timed = options.timed ?? false;
    this.#pace = options.pace;
    this.#conn = new FrameConnection(conn, {
      ...(options.maxMessageSize === undefined ? {} : { maxMessageSize: options.maxMessageSize }),
      onFrame: (frame) => this.#onFrame(frame),
      onProtocolError: (err) => this.#broken(`sent an invalid stream: ${err.message}`),
      onClose: () => this.#onClose(),
    });
    this.#conn.run().catch(() => this.#conn.close());
  }

  /** Its label. */
  get label(): string {
    return this.#options.label;
  }

  /** Requests sent and not yet answered (or timed out). */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** Requests the peer works on: in flight plus those answered `TIMEOUT` already. */
  get load(): number {
    return this.#pending.size + this.#overdue.size;
  }

  /** Requests answered. */
  get served(): number {
    return this.#served;
  }

  /** Bytes queued and not yet written to the peer. */
  get unwritten(): number {
    return this.#conn.pendingBytes;
  }

  /** True while open and the peer reads what it is sent. */
  get writable(): boolean {
    return !this.#closed && this.#conn.pendingBytes <= this.#writeLimit;
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Resolves when the connection has closed. */
  get done(): Promise<void> {
    return this.#conn.done;
  }

  /**
   * Forwards a call's frame under a msgid of our own. Hot path: the frame is
   * copied into the write buffer with its msgid replaced, nothing else.
   */
  send(call: Call): void {
    this.#pace?.sent();
    this.#write(call);
  }

  #write(call: Call): void {
    const id = this.#pending.add(call);
    call.attempts++;
    this.#conn.writeWithMsgid(REQUEST, id, call.frame, call.tail);
  }

  /**
   * Forwards a notification frame as it is; dropped (false) while the peer
   * does not read what it was sent, since notifications have no bound.
   */
  notify(frame: Uint8Array): boolean {
    if (!this.writable) return false;
    this.#conn.write(frame);
    return true;
  }

  /** Sends a notification made here (e.g. `shutdown`). */
  notifyMethod(method: string, params: unknown[] = []): void {
    this.#conn.write(encodeNotification(method, params));
  }

  /**
   * Calls `method` on the peer for the proxy itself (readiness and health
   * checks). Resolves with the answer, an error answer included; rejects
   * with `TIMEOUT` after `timeoutMs`, or `CONNECTION_CLOSED`.
   */
  request(
    method: string,
    params: unknown[],
    timeoutMs: number,
  ): Promise<{ error: WireError | null }> {
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.#internal.delete(call);
      };
      const requester: Requester = {
        closed: false,
        deliver: () => {
          done();
          resolve({ error: null });
        },
        fail: (_msgid, error) => {
          done();
          if (error.code === ErrorCode.CONNECTION_CLOSED) {
            reject(new ProxyError(error.code, error.message));
          } else resolve({ error });
        },
      };
      const call = new Call(
        requester,
        0,
        method,
        encodeRequest(0, method, params),
        requestTail(0),
        undefined,
      );
      call.owned = true;
      const timer = setTimeout(() => {
        for (const [id, c] of this.#pending.entries()) if (c === call) this.#pending.delete(id);
        this.#internal.delete(call);
        reject(new ProxyError(ErrorCode.TIMEOUT, `no answer to ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#internal.add(call);
      this.#write(call);
    });
  }

  #onFrame(frame: Uint8Array): void {
    try {
      readEnvelope(frame, envelope);
    } catch (err) {
      this.#broken(`sent an invalid message: ${(err as Error).message}`);
      return;
    }
    const type = envelope.type;
    if (type === RESPONSE) {
      const id = envelope.msgid;
      const call = this.#pending.take(id);
      if (call === undefined) {
        // Answered already (TIMEOUT) or cancelled: it is done with it now.
        if (this.#overdue.delete(id)) {
          this.#served++;
          this.#pace?.done();
          this.#options.onFreed?.(this);
        } else if (this.#cancelled.delete(id)) {
          this.#served++;
          this.#pace?.done();
        }
        return;
      }
      if (this.#internal.has(call)) {
        call.requester.deliver(0, frame, envelope.tail);
        return;
      }
      this.#served++;
      this.#pace?.done();
      // nil (0xc0) in the error field: a result. Read here, where the frame is.
      call.errored = frame[envelope.tail] !== 0xc0;
      if (!call.requester.closed) call.requester.deliver(call.msgid, frame, envelope.tail);
      const onAnswer = this.#options.onAnswer;
      if (onAnswer) {
        onAnswer(this, call, this.#timed && call.startedAt > 0 ? this.#now() - call.startedAt : 0);
      }
    } else if (type === REQUEST) {
      // The proxy serves no callbacks: every request gets an answer all the same.
      this.#conn.write(encodeError(envelope.msgid, {
        code: ErrorCode.METHOD_NOT_FOUND,
        message: `Cannot call ${envelope.method}: the proxy serves no requests from its workers`,
      }, this.#options.errorFormat ?? "map"));
    } else if (type === NOTIFICATION) {
      log.debug(`${this.label} sent a notification ${envelope.method}: ignored`);
    }
  }

  #broken(message: string): void {
    this.#options.onProtocolError?.(this, message);
    this.close();
  }

  /**
   * Moves calls past their deadline out of flight (they stay counted in
   * `load` until the peer answers), calling `onTimeout` for each; returns the
   * oldest call the peer still works on, to judge whether it is stuck.
   */
  sweep(now: number, onTimeout: (call: Call) => void): Call | undefined {
    for (const [id, call] of this.#pending.entries()) {
      if (call.deadline !== 0 && call.deadline <= now) {
        this.#pending.delete(id);
        this.#overdue.set(id, call);
        onTimeout(call);
      }
    }
    let oldest: Call | undefined;
    for (
      const calls of [this.#overdue.values(), this.#cancelled.values(), this.#pending.values()]
    ) {
      for (const call of calls) {
        if (call.startedAt !== 0 && (oldest === undefined || call.startedAt < oldest.startedAt)) {
          oldest = call;
        }
      }
    }
    return oldest;
  }

  /**
   * Forgets the calls of a requester that went away: their places free at
   * once and their answers are dropped. Those with a deadline stay watched,
   * so a peer stuck on one is still caught.
   */
  cancelFor(requester: Requester): void {
    for (const [id, call] of this.#pending.entries()) {
      if (call.requester === requester) {
        this.#pending.delete(id);
        // Untracked, its answer will be dropped unseen: done for the pace now.
        if (call.startedAt !== 0) this.#cancelled.set(id, call);
        else this.#pace?.done(false);
      }
    }
    for (const [id, call] of this.#overdue) {
      if (call.requester === requester) {
        this.#overdue.delete(id);
        this.#cancelled.set(id, call);
      }
    }
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    const orphans: Call[] = [];
    for (const call of this.#pending.values()) if (!this.#internal.has(call)) orphans.push(call);
    for (let n = orphans.length + this.#overdue.size + this.#cancelled.size; n > 0; n--) {
      this.#pace?.done(false);
    }
    this.#pending.clear();
    this.#overdue.clear();
    this.#cancelled.clear();
    // The proxy's own requests (ping, health checks) learn at once.
    for (const call of [...this.#internal]) {
      call.requester.fail(0, {
        code: ErrorCode.CONNECTION_CLOSED,
        message: `Cannot get an answer: ${this.label} closed its connection`,
      });
    }
    this.#options.onClose?.(this, orphans);
  }

  /** Writes what is queued, then closes. */
  end(): Promise<void> {
    return this.#conn.end();
  }

  /** Closes at once; calls in flight go to `onClose` as orphans. Idempotent. */
  close(): void {
    this.#conn.close();
  }
}
