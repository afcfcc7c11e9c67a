/**
 * The one request object that travels through every layer of dispatch, from
 * the client's connection to a host's connection and back, and the party
 * that gets its answer.
 *
 * @module
 */

import type { WireError } from "../protocol/mod.ts";
import type { FrameArena } from "./frame_arena.ts";

/**
 * Whoever sent a request: gets the response frame, or an error. A client
 * connection of the proxy is one.
 */
export interface Requester {
  /** True once it can no longer take answers (they are then dropped). */
  readonly closed: boolean;
  /**
   * A response: `frame` from offset `tail` is the response after its msgid
   * (error and result), to be sent with `msgid`. Valid only during the call.
   */
  deliver(msgid: number, frame: Uint8Array, tail: number): void;
  /** Answers `msgid` with an error. */
  fail(msgid: number, error: WireError): void;
  /**
   * Which read of the requester's input the requests now arriving came
   * from (a client connection's read count): requests of one batch may be
   * kept on one host. Undefined: no batches (each request on its own).
   */
  readonly batch?: number;
}

/** A request (or notification) on its way to a host. */
export class Call {
  /** Who asked. */
  readonly requester: Requester;
  /** The requester's own msgid (any safe integer, negative ones too); 0 for a notification. */
  readonly msgid: number;
  /** The method. */
  readonly method: string;
  /** The routing key, when the request has one. */
  readonly key: string | undefined;
  /** True for a notification: sent, never answered. */
  readonly notification: boolean;
  /** The whole frame: a borrowed view until {@linkcode Call.own} copies it. */
  frame: Uint8Array;
  /** Offset after the msgid in `frame` (see `readEnvelope`). */
  readonly tail: number;
  /** True once `frame` is a copy of its own. */
  owned = false;
  /** True when it may be sent once more if its host fails before answering. */
  retryable = false;
  /** Times it was sent. */
  attempts = 0;
  /** The host it failed at, so a retry goes elsewhere. */
  avoid: unknown = null;
  /** When it must leave the queue (ms on the dispatcher's clock); 0 while not queued. */
  queueDeadline = 0;
  /** When it was sent (ms); 0 when not tracked. */
  startedAt = 0;
  /** When it is answered `TIMEOUT` (ms); 0 = never. */
  deadline = 0;
  /** A digest of its params for the slow log (see `paramsDigest`). */
  digest = 0;
  /** When the dispatcher got it (ms); 0 unless a request observer is set. */
  arrivedAt = 0;
  /** When it left for a host (ms); 0 unless a request observer is set. */
  sentAt = 0;
  /** True once answered with an error by its host (the answer's error field is not nil). */
  errored = false;

  /**
   * @param requester Who asked.
   * @param msgid The requester's msgid (ignored for a notification).
   * @param method The method.
   * @param frame The whole frame (borrowed: valid during the submitting call).
   * @param tail Offset after the msgid.
   * @param key The routing key, if any.
   * @param notification True for a notification.
   */
  constructor(
    requester: Requester,
    msgid: number,
    method: string,
    frame: Uint8Array,
    tail: number,
    key: string | undefined,
    notification = false,
  ) {
    this.requester = requester;
    this.msgid = msgid;
    this.method = method;
    this.frame = frame;
    this.tail = tail;
    this.key = key;
    this.notification = notification;
  }

  /**
   * Copies the frame, so the call can outlive the read buffer it came from.
   *
   * @param copies Where small copies are packed (without: a buffer of its own).
   */
  own(copies?: FrameArena): void {
    if (this.owned) return;
    this.frame = copies ? copies.copy(this.frame) : this.frame.slice();
    this.owned = true;
  }
}
