/**
 * The parties of a forwarded request.
 *
 * @module
 */

import type { WireError } from "../protocol/mod.ts";

/**
 * Whoever sent a request through the pool: gets the worker's response frame,
 * or an error. A client connection of the proxy is one.
 */
export interface Requester {
  /** True once it can no longer take answers (they are then dropped). */
  readonly closed: boolean;
  /**
   * A worker's response: `frame` from offset `tail` is the response after its
   * msgid (error and result), to be sent with `msgid`. Valid only during the call.
   */
  deliver(msgid: number, frame: Uint8Array, tail: number): void;
  /** Answers `msgid` with an error. */
  fail(msgid: number, error: WireError): void;
}

/** A request in flight at a worker. */
export interface Call {
  /** Who asked. */
  requester: Requester;
  /** The requester's own msgid. */
  msgid: number;
  /** The method, for stats and error reports. */
  method: string;
  /** An owned copy of the frame, kept only when the call may be retried. */
  frame?: Uint8Array;
  /** Offset after the msgid in `frame`. */
  tail?: number;
  /** True once sent a second time after its worker died. */
  retried?: boolean;
  /** Routing key (dedicated mode). */
  key?: string | undefined;
  /** When it was sent (performance.now() ms); set when deadlines are on. */
  startedAt?: number;
  /** When it times out (performance.now() ms); set when deadlines are on. */
  deadline?: number;
  /** A digest of the params for the slow log (hash and length, packed). */
  digest?: number;
}
