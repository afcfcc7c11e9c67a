/**
 * One client connection of the proxy.
 *
 * @module
 */

import type { FrameConnection } from "../net/frame_connection.ts";
import { encodeError, RESPONSE, type WireError } from "../protocol/mod.ts";
import type { Requester } from "../pool/call.ts";

/**
 * A client connection as a {@linkcode Requester}: answers go back with the
 * client's own msgid. Reading pauses while the client does not read its
 * answers, so a slow reader cannot make the proxy buffer without bound.
 */
export class ClientSession implements Requester {
  /** Connection number, for logs. */
  readonly id: number;
  #conn: FrameConnection | null = null;
  #owed = 0; // answers still to send
  #eof = false;
  #paused = false;

  /** @param id Connection number. */
  constructor(id: number) {
    this.id = id;
  }

  /** Binds the session to its connection (once). */
  attach(conn: FrameConnection): void {
    this.#conn = conn;
  }

  /** True once the connection has closed. */
  get closed(): boolean {
    return this.#conn === null || this.#conn.closed;
  }

  /** Answers this session still owes. */
  get owed(): number {
    return this.#owed;
  }

  /** Records that a request was accepted and an answer is owed. */
  expect(): void {
    this.#owed++;
  }

  /** Sends a worker's response under the client's msgid. */
  deliver(msgid: number, frame: Uint8Array, tail: number): void {
    this.#conn!.writeWithMsgid(RESPONSE, msgid, frame, tail);
    this.#answered();
  }

  /** Answers with an error. */
  fail(msgid: number, error: WireError): void {
    this.#conn!.write(encodeError(msgid, error));
    this.#answered();
  }

  /** Answers with an encoded response frame made by the proxy itself. */
  reply(frame: Uint8Array): void {
    this.#conn!.write(frame);
    this.#answered();
  }

  #answered(): void {
    this.#owed--;
    const conn = this.#conn!;
    if (this.#eof && this.#owed <= 0) {
      void conn.end();
      return;
    }
    if (!this.#paused && conn.congested) {
      this.#paused = true;
      conn.setReadPaused(true);
      void conn.flushed().then(() => {
        this.#paused = false;
        conn.setReadPaused(false);
      });
    }
  }

  /** The client ended its side: close once every owed answer is out. */
  onEof(): void {
    this.#eof = true;
    if (this.#owed <= 0) void this.#conn?.end();
  }
}
