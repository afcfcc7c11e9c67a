/**
 * The framed-connection core every protocol shares: whole frames in (split by
 * a stream decoder: MessagePack or the legacy protocol), batched writes out,
 * backpressure, and the bookkeeping that lets a {@linkcode ConnectionSweeper}
 * close connections that stall mid-message or sit idle.
 *
 * @module
 */

import { DEFAULT_MAX_MESSAGE_SIZE, FrameDecoder, ProxyError } from "../protocol/mod.ts";
import { BatchedWriter } from "./batched_writer.ts";

/**
 * Splits a byte stream into frames of type `F`; `FrameDecoder` (MessagePack)
 * and `LegacyFrameDecoder` are two.
 */
export interface StreamDecoder<F> {
  /** Bytes buffered and not yet returned as frames: > 0 means a frame is partly in. */
  readonly buffered: number;
  /** A region to read into. */
  reserve(): Uint8Array;
  /** Records `n` bytes read into the region. */
  commit(n: number): void;
  /** Appends a copy of bytes read elsewhere. */
  push(chunk: Uint8Array): void;
  /** The next whole frame, or null; throws a `ProxyError` on a bad stream. */
  next(): F | null;
  /** The buffered start of the frame being received. */
  partial(): Uint8Array;
  /** Changes the largest frame accepted (up to the one it was made with). */
  setLimit?(limit: number): void;
}

/** Options of {@linkcode FrameConnection}. */
export interface FrameConnectionOptions<F = Uint8Array> {
  /**
   * Called synchronously for each whole frame. A MessagePack frame's bytes
   * are valid only during the call: copy what must outlive it.
   */
  onFrame: (frame: F) => void;
  /**
   * Splits the stream. @default {a `FrameDecoder` (MessagePack) with `maxMessageSize`}
   */
  decoder?: StreamDecoder<F>;
  /**
   * Called when the stream is not valid or a message is too large, before
   * the connection stops reading. A writable moment for a last error reply.
   */
  onProtocolError?: (error: ProxyError, partial: Uint8Array) => void;
  /** Called once when the connection has closed, for whatever reason. */
  onClose?: () => void;
  /**
   * Called when the peer ends its side (or after a protocol error, or a
   * message timeout). When given, the connection stays open for writing (so
   * answers still in flight can go out) and the owner calls `end()`; without
   * it, the connection ends at once.
   */
  onEof?: () => void;
  /**
   * Largest message accepted by the default decoder, in bytes.
   * @default {8388608}
   */
  maxMessageSize?: number;
  /** Bytes already read from `conn` (e.g. while sniffing the protocol), handled first. */
  initial?: Uint8Array;
  /**
   * Pending output above which the connection counts as congested (owners
   * pause reading until the peer reads again).
   * @default {4194304}
   */
  highWaterMark?: number;
}

/** What a {@linkcode ConnectionSweeper} enforces. */
export interface SweepLimits {
  /** Milliseconds a message may take to arrive once begun; 0 = no limit. */
  messageTimeout: number;
  /** Milliseconds a connection may sit idle between messages; 0 = no limit. */
  idleTimeout: number;
}

/**
 * Wraps a `Deno.Conn`: reads whole frames and writes bytes, coalescing every
 * write made in one event-loop turn into one syscall.
 */
export class FrameConnection<F = Uint8Array> {
  readonly #conn: Deno.Conn;
  readonly #decoder: StreamDecoder<F>;
  readonly #onFrame: (frame: F) => void;
  readonly #onProtocolError: ((error: ProxyError, partial: Uint8Array) => void) | undefined;
  readonly #onClose: (() => void) | undefined;
  readonly #onEof: (() => void) | undefined;
  readonly #highWaterMark: number;
  #initial: Uint8Array | undefined;
  readonly #writer: BatchedWriter;
  #closed = false;
  #closing = false;
  #readPaused = false;
  #readStopped = false;
  #resumeRead: (() => void) | null = null;
  #done: Promise<void>;
  #resolveDone!: () => void;
  // Activity, counted on the hot path and turned into times only by sweep(),
  // which has the clock: no clock read per read.
  #reads = 0;
  #frames = 0;
  #bytesRead = 0;
  #partial = false; // a frame is partly in
  #seenReads = 0;
  #seenFrames = 0;
  #lastActivity = -1; // set at the first sweep
  #partialSince = -1; // when a sweep first saw the frame now partly in; -1: none
  #busy: () => boolean = () => false;

  /**
   * @param conn An open connection.
   * @param options Callbacks and limits.
   */
  constructor(conn: Deno.Conn, options: FrameConnectionOptions<F>) {
    this.#conn = conn;
    this.#decoder = options.decoder ??
      (new FrameDecoder({
        maxMessageSize: options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
      }) as unknown as StreamDecoder<F>);
    this.#onFrame = options.onFrame;
    this.#onProtocolError = options.onProtocolError;
    this.#onClose = options.onClose;
    this.#onEof = options.onEof;
    this.#highWaterMark = options.highWaterMark ?? 4 * 1024 * 1024;
    this.#initial = options.initial;
    this.#writer = new BatchedWriter(conn, { onError: () => this.close() });
    this.#done = new Promise((resolve) => this.#resolveDone = resolve);
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Resolves when the connection has closed. */
  get done(): Promise<void> {
    return this.#done;
  }

  /** Changes the largest message accepted from now on (up to `maxMessageSize`). */
  setMessageLimit(limit: number): void {
    this.#decoder.setLimit?.(limit);
  }

  /** Reads that brought bytes so far (the frames of one read form a batch). */
  get reads(): number {
    return this.#reads;
  }

  /** Bytes read so far. */
  get bytesRead(): number {
    return this.#bytesRead;
  }

  /** Bytes written so far. */
  get bytesWritten(): number {
    return this.#writer.bytesWritten;
  }

  /** Bytes waiting to be written. */
  get pendingBytes(): number {
    return this.#writer.pendingBytes;
  }

  /**
   * Tells the idle check whether the owner still has work for this
   * connection (answers owed): a connection waiting for its answers is not idle.
   */
  setBusyCheck(busy: () => boolean): void {
    this.#busy = busy;
  }

  /** Starts the read loop; resolves when reading has ended and the connection is closed. */
  async run(): Promise<void> {
    const conn = this.#conn;
    const decoder = this.#decoder;
    try {
      // Frames already buffered (left when reading paused) go before new reads.
      let more = false;
      if (this.#initial) {
        decoder.push(this.#initial);
        this.#bytesRead += this.#initial.length;
        this.#initial = undefined;
        this.#reads++;
        more = true;
      }
      while (!this.#closed && !this.#closing && !this.#readStopped) {
        if (this.#readPaused) {
          await new Promise<void>((resolve) => this.#resumeRead = resolve);
          // Frames left buffered while paused go first; a message partly in
          // gets its time limit afresh (the pause was ours, not the peer's).
          more = true;
          this.#partialSince = -1;
          continue;
        }
        if (more) {
          more = false;
          if (this.#takeFrames()) return;
          continue;
        }
        let n: number | null;
        try {
          n = await conn.read(decoder.reserve());
        } catch {
          break; // reset by peer, or closed under us
        }
        if (n === null) {
          if (this.#onEof && !this.#closed) {
            this.#readStopped = true;
            this.#onEof();
            return;
          }
          break;
        }
        decoder.commit(n);
        this.#reads++;
        this.#bytesRead += n;
        if (this.#takeFrames()) return;
      }
    } catch (err) {
      this.close();
      throw err;
    }
    // Stopped by the owner, who ends the connection when its answers are out.
    if (this.#readStopped) return;
    // Peer closed its side: whatever is still queued goes out, then close.
    await this.end();
  }

  // Hands out whole frames until the decoder needs bytes or reading pauses
  // (the rest stays buffered for later). True when reading has ended.
  #takeFrames(): boolean {
    const decoder = this.#decoder;
    try {
      let frame: F | null;
      while (!this.#readPaused && (frame = decoder.next()) !== null) {
        this.#frames++;
        this.#onFrame(frame);
        if (this.#closed || this.#closing || this.#readStopped) break;
      }
    } catch (err) {
      if (!(err instanceof ProxyError)) throw err;
      this.#onProtocolError?.(err, decoder.partial());
      this.#partial = false;
      // Nothing more is read; answers owed for earlier requests still go
      // out when the owner handles it like the end of input.
      this.#stopInput();
      return true;
    }
    this.#partial = decoder.buffered > 0;
    return false;
  }

  // The end of input as the owner sees it: onEof (answers still go out), or end.
  #stopInput(): void {
    if (this.#closed) return;
    this.#readStopped = true;
    this.setReadPaused(false);
    if (this.#onEof) this.#onEof();
    else void this.end();
  }

  /**
   * Stops reading for good (e.g. after an invalid frame) without closing, so
   * answers still owed can be written; the owner then calls `end()`.
   */
  stopReading(): void {
    this.#readStopped = true;
    this.setReadPaused(false);
  }

  /** Pauses or resumes reading (backpressure). Frames already read wait too. */
  setReadPaused(paused: boolean): void {
    this.#readPaused = paused;
    if (!paused && this.#resumeRead) {
      const resume = this.#resumeRead;
      this.#resumeRead = null;
      resume();
    }
  }

  /** True while reading is paused. */
  get readPaused(): boolean {
    return this.#readPaused;
  }

  /** True when more output is queued than the high-water mark. */
  get congested(): boolean {
    return this.pendingBytes > this.#highWaterMark;
  }

  /** Queues bytes (one or more whole frames) for writing. */
  write(frame: Uint8Array): void {
    if (!this.#closed) this.#writer.write(frame);
  }

  /**
   * Queues `frame` with its msgid replaced: writes a new envelope head, then
   * `frame` from offset `tail` on (see `readEnvelope`).
   */
  writeWithMsgid(type: number, msgid: number, frame: Uint8Array, tail: number): void {
    if (!this.#closed) this.#writer.writeWithMsgid(type, msgid, frame, tail);
  }

  /** Resolves once everything queued has been written (or the connection closed). */
  flushed(): Promise<void> {
    return this.#writer.flushed();
  }

  /**
   * Closes a connection that broke a time limit (see {@linkcode SweepLimits}):
   * a message begun and not finished within `messageTimeout` (input stops,
   * answers owed still go out), or no traffic and nothing owed for
   * `idleTimeout`. Returns what it did, for the owner's counters.
   */
  sweep(now: number, limits: SweepLimits): "message-timeout" | "idle-timeout" | null {
    if (this.#closed) return null;
    if (this.#reads !== this.#seenReads || this.#lastActivity < 0) {
      this.#seenReads = this.#reads;
      this.#lastActivity = now;
    }
    // A message partly in is timed from the first sweep that sees it; a frame
    // completed since the last sweep starts the clock again.
    if (!this.#partial || this.#frames !== this.#seenFrames) {
      this.#seenFrames = this.#frames;
      this.#partialSince = this.#partial ? now : -1;
    } else if (this.#partialSince < 0) this.#partialSince = now;
    if (
      limits.messageTimeout > 0 && this.#partialSince >= 0 && !this.#readStopped &&
      !this.#readPaused && now - this.#partialSince >= limits.messageTimeout
    ) {
      this.#partialSince = -1;
      this.#stopInput();
      return "message-timeout";
    }
    if (
      limits.idleTimeout > 0 && this.#partialSince < 0 && this.pendingBytes === 0 &&
      !this.#busy() && now - this.#lastActivity >= limits.idleTimeout
    ) {
      this.close();
      return "idle-timeout";
    }
    // A quiet connection gives its write buffers back.
    if (this.pendingBytes === 0 && now - this.#lastActivity >= 1000) this.#writer.trim();
    return null;
  }

  /** Writes what is queued, then closes. Idempotent. */
  async end(): Promise<void> {
    if (this.#closed) return;
    this.#closing = true;
    await this.flushed();
    this.close();
  }

  /** Closes at once, discarding queued output. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed by the runtime
    }
    this.setReadPaused(false);
    this.#writer.discard();
    this.#resolveDone();
    this.#onClose?.();
  }
}
