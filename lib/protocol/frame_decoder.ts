/**
 * Finds MessagePack object boundaries in a byte stream.
 *
 * MessagePack-RPC has no length prefix: a stream is simply one MessagePack
 * object after another. {@linkcode FrameDecoder} scans object headers without
 * decoding values, so it can tell where a message ends, reject a message that
 * would exceed the size limit as soon as its header says so (before buffering
 * it), and hand out each complete message as raw bytes.
 *
 * @module
 */

import { ReadBuffer } from "./_read_buffer.ts";
import { ErrorCode, ProxyError } from "./errors.ts";

/**
 * Default maximum size of one message: 8 MiB.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_MAX_MESSAGE_SIZE } from "./frame_decoder.ts";
 * assert.equal(DEFAULT_MAX_MESSAGE_SIZE, 8 * 1024 * 1024);
 * ```
 */
export const DEFAULT_MAX_MESSAGE_SIZE = 8 * 1024 * 1024;

/** Options of {@linkcode FrameDecoder}. */
export interface FrameDecoderOptions {
  /**
   * Largest message accepted, in bytes.
   * @default {8388608}
   */
  maxMessageSize?: number;
  /**
   * Largest read region offered by `reserve()`; the buffer starts small,
   * grows up to `maxMessageSize + readSize` and never beyond, and shrinks
   * back when the connection goes quiet.
   * @default {65536}
   */
  readSize?: number;
}

/**
 * Incremental splitter of a MessagePack byte stream into whole messages.
 *
 * Bytes go in with {@linkcode FrameDecoder.push} (copy) or with
 * {@linkcode FrameDecoder.reserve} + {@linkcode FrameDecoder.commit} (read
 * straight into the decoder's buffer); whole messages come out of
 * {@linkcode FrameDecoder.next} as views that stay valid until the next
 * `push` or `reserve`.
 *
 * @example Usage
 * ```ts
 * import { FrameDecoder } from "./frame_decoder.ts";
 * const decoder = new FrameDecoder();
 * decoder.push(new Uint8Array([0x93, 0x02, 0xa1]));
 * console.log(decoder.next()); // null: incomplete
 * decoder.push(new Uint8Array([0x78, 0x90]));
 * console.log(decoder.next()); // Uint8Array(5) [147, 2, 161, 120, 144]
 * ```
 */
export class FrameDecoder {
  readonly #rb: ReadBuffer; // rb.start: first byte of the unfinished message
  #pos = 0; // next header to scan; may lie beyond rb.end while skipping a payload
  #remaining = 0; // objects still to scan in the current message; 0 = none started
  #failed: ProxyError | null = null;
  #max: number;
  readonly #capacityMax: number;
  readonly #readSize: number;

  /**
   * Creates a decoder with an empty buffer.
   *
   * @param options Size limits.
   * @throws {RangeError} When `maxMessageSize` is not a positive integer.
   */
  constructor(options: FrameDecoderOptions = {}) {
    this.#max = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.#readSize = options.readSize ?? 64 * 1024;
    if (!Number.isSafeInteger(this.#max) || this.#max < 1) {
      throw new RangeError(`Cannot create decoder: maxMessageSize must be a positive integer`);
    }
    this.#capacityMax = this.#max;
    this.#rb = new ReadBuffer(
      this.#readSize,
      this.#max + this.#readSize,
      (shift) => this.#pos -= shift,
    );
  }

  /**
   * Changes the largest message accepted from now on, up to the
   * `maxMessageSize` it was created with (e.g. a small one until a client
   * has authenticated).
   *
   * @throws {RangeError} When `limit` is not from 1 to that size.
   */
  setLimit(limit: number): void {
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > this.#capacityMax) {
      throw new RangeError(`Cannot set limit: expected 1 to ${this.#capacityMax}, got ${limit}`);
    }
    this.#max = limit;
  }

  /** Number of bytes buffered and not yet returned as messages. */
  get buffered(): number {
    return this.#rb.buffered;
  }

  /** Bytes of buffer held now (for memory accounting). */
  get capacity(): number {
    return this.#rb.capacity;
  }

  /**
   * The buffered start of the message being received (after an error: of the
   * offending message), so its msgid can still be read for an error reply.
   */
  partial(): Uint8Array {
    return this.#rb.partial();
  }

  /**
   * Returns a writable region at the end of the buffer: small on a quiet
   * connection, growing up to `readSize` while reads fill it. Fill it, then
   * call {@linkcode FrameDecoder.commit} with the number of bytes written.
   */
  reserve(): Uint8Array {
    return this.#rb.reserve();
  }

  /** Records that `n` bytes were written into the region from {@linkcode reserve}. */
  commit(n: number): void {
    this.#rb.commit(n);
  }

  /** Appends a copy of `chunk` (callers bound the chunk size; reads use {@linkcode reserve}). */
  push(chunk: Uint8Array): void {
    this.#rb.push(chunk);
  }

  /**
   * Returns the next whole message, or `null` when more bytes are needed.
   *
   * @throws {ProxyError} `MESSAGE_TOO_LARGE` or `PARSE_ERROR`; after that the
   * stream cannot be resynchronised and every later call throws the same.
   */
  next(): Uint8Array | null {
    if (!this.#scan()) return null;
    const frame = this.#rb.bytes.subarray(this.#rb.start, this.#pos);
    this.#rb.start = this.#pos;
    this.#remaining = 0;
    return frame;
  }

  // Scans headers; true when the message starting at rb.start is complete.
  #scan(): boolean {
    if (this.#failed) throw this.#failed;
    if (this.#remaining === 0) {
      if (this.#rb.start === this.#rb.end) return false;
      this.#pos = this.#rb.start;
      this.#remaining = 1;
    }
    const rb = this.#rb;
    const buf = rb.bytes;
    const view = rb.view;
    const end = rb.end;
    let pos = this.#pos;
    let remaining = this.#remaining;
    while (remaining > 0) {
      if (pos >= end) break;
      const b = buf[pos]!;
      let head = 1; // header bytes
      let body = 0; // payload bytes to skip
      let items = 0; // child objects announced
      if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) {
        // fixint, nil, bool
      } else if (b <= 0x8f) items = (b & 0x0f) * 2;
      else if (b <= 0x9f) items = b & 0x0f;
      else if (b <= 0xbf) body = b & 0x1f;
      else {
        switch (b) {
          case 0xc4: // bin8
          case 0xd9: // str8
            head = 2;
            break;
          case 0xc5: // bin16
          case 0xda: // str16
          case 0xdc: // array16
          case 0xde: // map16
            head = 3;
            break;
          case 0xc6: // bin32
          case 0xdb: // str32
          case 0xdd: // array32
          case 0xdf: // map32
            head = 5;
            break;
          case 0xc7: // ext8: len, type
            head = 3;
            break;
          case 0xc8: // ext16
            head = 4;
            break;
          case 0xc9: // ext32
            head = 6;
            break;
          case 0xca: // float32
          case 0xce: // uint32
          case 0xd2: // int32
            head = 5;
            break;
          case 0xcb: // float64
          case 0xcf: // uint64
          case 0xd3: // int64
            head = 9;
            break;
          case 0xcc: // uint8
          case 0xd0: // int8
            head = 2;
            break;
          case 0xcd: // uint16
          case 0xd1: // int16
            head = 3;
            break;
          case 0xd4: // fixext1: type + 1
            head = 3;
            break;
          case 0xd5: // fixext2
            head = 4;
            break;
          case 0xd6: // fixext4
            head = 6;
            break;
          case 0xd7: // fixext8
            head = 10;
            break;
          case 0xd8: // fixext16
            head = 18;
            break;
          default: // 0xc1 is never used
            this.#failed = new ProxyError(
              ErrorCode.PARSE_ERROR,
              `Cannot decode message: byte 0x${b.toString(16)} is not MessagePack`,
            );
            throw this.#failed;
        }
        if (pos + head > end) break; // header itself incomplete
        switch (b) {
          case 0xc4:
          case 0xd9:
            body = buf[pos + 1]!;
            break;
          case 0xc5:
          case 0xda:
            body = view.getUint16(pos + 1);
            break;
          case 0xc6:
          case 0xdb:
            body = view.getUint32(pos + 1);
            break;
          case 0xdc:
            items = view.getUint16(pos + 1);
            break;
          case 0xdd:
            items = view.getUint32(pos + 1);
            break;
          case 0xde:
            items = view.getUint16(pos + 1) * 2;
            break;
          case 0xdf:
            items = view.getUint32(pos + 1) * 2;
            break;
          case 0xc7:
            body = buf[pos + 1]!;
            break;
          case 0xc8:
            body = view.getUint16(pos + 1);
            break;
          case 0xc9:
            body = view.getUint32(pos + 1);
            break;
        }
      }
      pos += head + body;
      remaining += items - 1;
      // Each announced object takes at least one more byte: reject early.
      if (pos - rb.start + remaining > this.#max) {
        this.#failed = new ProxyError(
          ErrorCode.MESSAGE_TOO_LARGE,
          `Cannot accept message: larger than the limit of ${this.#max} bytes`,
          { data: { limit: this.#max } },
        );
        throw this.#failed;
      }
    }
    this.#pos = pos;
    this.#remaining = remaining;
    return remaining === 0 && pos <= end;
  }
}
