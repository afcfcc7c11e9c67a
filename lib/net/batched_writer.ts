/**
 * Output that coalesces every write made in one event-loop turn into one
 * syscall, with two swapped buffers so writes queued while one is in flight
 * never wait for it.
 *
 * @module
 */

import { MAX_ENVELOPE_HEAD, writeEnvelopeHead } from "../protocol/mod.ts";

/** Options of {@linkcode BatchedWriter}. */
export interface BatchedWriterOptions {
  /** Called once when a write fails (the peer is gone); the owner closes. */
  onError: () => void;
  /** Called after each flush that emptied the buffers. */
  onDrained?: () => void;
}

const INITIAL_SIZE = 512;
// A burst may grow the spare buffer; past this it is let go after use.
const KEEP_LIMIT = 1024 * 1024;
// Buffers are allocated on first write and let go by trim(), so an idle
// connection holds none.
const EMPTY = new Uint8Array(0);

/** Batched, ordered writes to a connection. */
export class BatchedWriter {
  readonly #conn: { write(p: Uint8Array): Promise<number> };
  readonly #options: BatchedWriterOptions;
  #out = EMPTY;
  #outLen = 0;
  /** Bytes written so far. */
  bytesWritten = 0;
  #spare = EMPTY;
  #sendingLen = 0;
  #writing = false;
  #scheduled = false;
  #discarded = false;
  #drainWaiters: (() => void)[] = [];

  /**
   * @param conn Where the bytes go.
   * @param options Error and drain callbacks.
   */
  constructor(conn: { write(p: Uint8Array): Promise<number> }, options: BatchedWriterOptions) {
    this.#conn = conn;
    this.#options = options;
  }

  /** Bytes queued or being written. */
  get pendingBytes(): number {
    return this.#outLen + this.#sendingLen;
  }

  /** Queues a copy of `bytes`. */
  write(bytes: Uint8Array): void {
    if (this.#discarded) return;
    const at = this.#reserve(bytes.length);
    this.#out.set(bytes, at);
    this.#outLen = at + bytes.length;
    this.#schedule();
  }

  /**
   * Queues `frame` with its msgid replaced: a new envelope head, then `frame`
   * from offset `tail` on (see `readEnvelope`). Nothing is allocated.
   */
  writeWithMsgid(type: number, msgid: number, frame: Uint8Array, tail: number): void {
    if (this.#discarded) return;
    const rest = frame.length - tail;
    const at = this.#reserve(MAX_ENVELOPE_HEAD + rest);
    const off = writeEnvelopeHead(this.#out, at, type, msgid);
    this.#out.set(frame.subarray(tail), off);
    this.#outLen = off + rest;
    this.#schedule();
  }

  /** Resolves once everything queued has been written (or discarded). */
  async flushed(): Promise<void> {
    if (this.pendingBytes === 0 || this.#discarded) return;
    await new Promise<void>((resolve) => this.#drainWaiters.push(resolve));
  }

  /** Lets go of the buffers while nothing is queued (an idle connection). */
  trim(): void {
    if (this.#writing || this.#outLen > 0) return;
    this.#out = EMPTY;
    this.#spare = EMPTY;
  }

  /** Drops what is queued and takes no more writes. Idempotent. */
  discard(): void {
    this.#discarded = true;
    this.#outLen = 0;
    this.#out = EMPTY;
    this.#spare = EMPTY;
    this.#notifyDrained();
  }

  #reserve(n: number): number {
    const need = this.#outLen + n;
    if (need > this.#out.length) {
      let size = Math.max(this.#out.length * 2, INITIAL_SIZE);
      while (size < need) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.#out.subarray(0, this.#outLen));
      this.#out = next;
    }
    return this.#outLen;
  }

  // A microtask runs after every continuation resolved in this turn, so the
  // writes of all of them leave in one syscall.
  #schedule(): void {
    if (this.#scheduled || this.#writing) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#writing) return;
    this.#writing = true;
    let failed = false;
    try {
      while (this.#outLen > 0 && !this.#discarded) {
        const sending = this.#out;
        const len = this.#outLen;
        this.#out = this.#spare;
        this.#spare = sending;
        this.#outLen = 0;
        this.#sendingLen = len;
        let off = 0;
        while (off < len) off += await this.#conn.write(sending.subarray(off, len));
        this.bytesWritten += len;
        this.#sendingLen = 0;
        if (this.#spare.length > KEEP_LIMIT) this.#spare = EMPTY;
      }
    } catch {
      failed = true;
      this.#sendingLen = 0;
      this.discard();
    } finally {
      this.#writing = false;
    }
    if (failed) this.#options.onError();
    this.#notifyDrained();
    this.#options.onDrained?.();
  }

  #notifyDrained(): void {
    if (this.pendingBytes !== 0 && !this.#discarded) return;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w();
  }
}
