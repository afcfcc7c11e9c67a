/**
 * A MessagePack-RPC connection: whole frames in, batched writes out.
 *
 * @module
 */

import { DEFAULT_MAX_MESSAGE_SIZE, FrameDecoder, ProxyError } from "../protocol/mod.ts";
import { BatchedWriter } from "./batched_writer.ts";

/** Options of {@linkcode FrameConnection}. */
export interface FrameConnectionOptions {
  /**
   * Called synchronously for each whole frame. The bytes are valid only
   * during the call: copy what must outlive it.
   */
  onFrame: (frame: Uint8Array) => void;
  /**
   * Called when the stream is not MessagePack or a message is too large,
   * before the connection closes. A writable moment for a last error reply.
   */
  onProtocolError?: (error: ProxyError, partial: Uint8Array) => void;
  /** Called once when the connection has closed, for whatever reason. */
  onClose?: () => void;
  /**
   * Called when the peer ends its side. When given, the connection stays open
   * for writing (so answers still in flight can go out) and the owner calls
   * `end()`; without it, the connection ends at once.
   */
  onEof?: () => void;
  /**
   * Largest message accepted, in bytes.
   * @default {8388608}
   */
  maxMessageSize?: number;
  /** Bytes already read from `conn` (e.g. while sniffing the protocol), handled first. */
  initial?: Uint8Array;
  /**
   * Pending output above which reading pauses until the peer reads again.
   * @default {4194304}
   */
  highWaterMark?: number;
}

/**
 * Wraps a `Deno.Conn`: reads whole MessagePack frames and writes frames,
 * coalescing every write made in one event-loop turn into one syscall.
 */
export class FrameConnection {
  readonly #conn: Deno.Conn;
  readonly #decoder: FrameDecoder;
  readonly #onFrame: (frame: Uint8Array) => void;
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

  /**
   * @param conn An open connection.
   * @param options Callbacks and limits.
   */
  constructor(conn: Deno.Conn, options: FrameConnectionOptions) {
    this.#conn = conn;
    this.#decoder = new FrameDecoder({
      maxMessageSize: options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
    });
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

  /** Bytes waiting to be written. */
  get pendingBytes(): number {
    return this.#writer.pendingBytes;
  }

  /** Starts the read loop; resolves when reading has ended and the connection is closed. */
  async run(): Promise<void> {
    const conn = this.#conn;
    const decoder = this.#decoder;
    try {
      while (!this.#closed && !this.#closing && !this.#readStopped) {
        if (this.#readPaused) {
          await new Promise<void>((resolve) => this.#resumeRead = resolve);
          continue;
        }
        let n: number | null;
        if (this.#initial) {
          decoder.push(this.#initial);
          this.#initial = undefined;
          n = 0;
        } else {
          try {
            n = await conn.read(decoder.reserve());
          } catch {
            break; // reset by peer, or closed under us
          }
        }
        if (n === null) {
          if (this.#onEof && !this.#closed) {
            this.#onEof();
            return;
          }
          break;
        }
        decoder.commit(n);
        let frame: Uint8Array | null;
        try {
          while ((frame = decoder.next()) !== null) {
            this.#onFrame(frame);
            if (this.#closed || this.#closing || this.#readStopped) break;
          }
        } catch (err) {
          if (!(err instanceof ProxyError)) throw err;
          this.#onProtocolError?.(err, decoder.partial());
          // Nothing more is read; answers owed for earlier requests still go
          // out when the owner handles it like the end of input.
          if (this.#onEof && !this.#closed) {
            this.#readStopped = true;
            this.#onEof();
            return;
          }
          await this.end();
          break;
        }
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

  /**
   * Stops reading for good (e.g. after an invalid frame) without closing, so
   * answers still owed can be written; the owner then calls `end()`.
   */
  stopReading(): void {
    this.#readStopped = true;
    this.setReadPaused(false);
  }

  /** Pauses or resumes reading (backpressure). */
  setReadPaused(paused: boolean): void {
    this.#readPaused = paused;
    if (!paused && this.#resumeRead) {
      const resume = this.#resumeRead;
      this.#resumeRead = null;
      resume();
    }
  }

  /** True when more output is queued than the high-water mark. */
  get congested(): boolean {
    return this.pendingBytes > this.#highWaterMark;
  }

  /** Queues one whole frame for writing. */
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
