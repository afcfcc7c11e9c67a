/**
 * The binary wire protocol of the original C++ proxy ("legacy" frames), so
 * legacy clients can share a port with MessagePack-RPC. Pure, no I/O.
 *
 * A frame is a 47-byte packed little-endian header followed by `body_len`
 * bytes of body (JSON text in practice):
 *
 * | offset | size | field                                                      |
 * | ------ | ---- | ---------------------------------------------------------- |
 * | 0      | 5    | tag, ASCII `CCRPC`, no terminator                          |
 * | 5      | 1    | body_type: `'0'` JSON, `'1'` binary (carried)              |
 * | 6      | 1    | msg_type: 0 normal, 1 encrypted, 2 compressed, 3 (carried) |
 * | 7      | 4    | flow_no, int32: request id, echoed in the reply            |
 * | 11     | 4    | func_no, uint32: the function number                       |
 * | 15     | 4    | err_no, int32: 0 in requests                               |
 * | 19     | 4    | body_len, uint32                                           |
 * | 23     | 4    | origin_len, uint32 (carried)                               |
 * | 27     | 20   | reserved, zero                                             |
 *
 * @module
 */

import { ReadBuffer } from "./_read_buffer.ts";
import { ErrorCode, ProxyError } from "./errors.ts";
import { DEFAULT_MAX_MESSAGE_SIZE } from "./frame_decoder.ts";

/** The tag that starts every legacy frame: ASCII `CCRPC`. Do not modify. */
export const LEGACY_TAG: Uint8Array = new Uint8Array([0x43, 0x43, 0x52, 0x50, 0x43]);

/** Size of a legacy frame header in bytes. */
export const LEGACY_HEADER_SIZE = 47;

/** `body_type` of a JSON body: ASCII `'0'`. */
export const LEGACY_BODY_JSON = 0x30;
/** `body_type` of a binary body: ASCII `'1'`. */
export const LEGACY_BODY_BINARY = 0x31;

/** Legacy `err_no`: unknown request. */
export const LEGACY_ERR_UNKNOWN = -1;
/** Text of {@linkcode LEGACY_ERR_UNKNOWN}, spelt as the original spells it. */
export const LEGACY_ERR_UNKNOWN_TEXT = "unknow request";
/** Legacy `err_no`: illegal request. */
export const LEGACY_ERR_ILLEGAL = -2;
/** Text of {@linkcode LEGACY_ERR_ILLEGAL}. */
export const LEGACY_ERR_ILLEGAL_TEXT = "illegal request";
/** Legacy `err_no`: the user id is missing or unknown. */
export const LEGACY_ERR_NO_USER = -3;
/** Text of {@linkcode LEGACY_ERR_NO_USER}. */
export const LEGACY_ERR_NO_USER_TEXT = "input param invalid,can't find user id";

/** Legacy `func_no` of user functions. */
export const LEGACY_FUNC_USER = 1000;
/** Legacy `func_no` answered by the proxy itself with {@linkcode LEGACY_PROXY_REPLY}. */
export const LEGACY_FUNC_PROXY = 2000;

/** The exact success body the original proxy sends for {@linkcode LEGACY_FUNC_PROXY}. */
export const LEGACY_PROXY_REPLY =
  `{"errno":0,"errmsg":"successful","result":"handle rpc function successful"}`;

/** The fields of a legacy frame header (the tag and reserved bytes are implied). */
export interface LegacyHeader {
  /** Raw `body_type` byte: {@linkcode LEGACY_BODY_JSON} or {@linkcode LEGACY_BODY_BINARY}. */
  bodyType: number;
  /** Raw `msg_type` byte: 0 normal, 1 encrypted, 2 compressed, 3 both. Not interpreted. */
  msgType: number;
  /** Request id (int32), echoed in the reply. */
  flowNo: number;
  /** Function number (uint32). */
  funcNo: number;
  /** Error number (int32): 0 in requests and successful replies. */
  errNo: number;
  /** Body length in bytes (uint32). */
  bodyLen: number;
  /** Original (uncompressed) body length (uint32). Not interpreted. */
  originLen: number;
}

/** A whole legacy frame. */
export interface LegacyFrame {
  /** The decoded header. */
  header: LegacyHeader;
  /** The body, `header.bodyLen` bytes. */
  body: Uint8Array;
}

/** Header fields given to {@linkcode encodeLegacyFrame}. */
export interface LegacyHeaderInit {
  /** Raw `body_type` byte (uint8), e.g. {@linkcode LEGACY_BODY_JSON}. */
  bodyType: number;
  /** Raw `msg_type` byte (uint8). */
  msgType: number;
  /** Request id (int32). */
  flowNo: number;
  /** Function number (uint32). */
  funcNo: number;
  /** Error number (int32). */
  errNo: number;
  /**
   * Body length; must equal `body.length` when given.
   * @default {body.length}
   */
  bodyLen?: number;
  /**
   * Original body length (uint32).
   * @default {body.length}
   */
  originLen?: number;
}

const INT32_MIN = -0x8000_0000;
const INT32_MAX = 0x7fff_ffff;
const UINT32_MAX = 0xffff_ffff;

function checkInt(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `Cannot encode legacy frame: ${name} must be an integer in [${min}, ${max}], got ${value}`,
    );
  }
}

/**
 * Encodes a legacy frame: header (reserved bytes zero) followed by `body`.
 *
 * @param header The header fields; `bodyLen` and `originLen` default to `body.length`.
 * @param body The body bytes.
 * @returns A new buffer of `LEGACY_HEADER_SIZE + body.length` bytes.
 * @throws {RangeError} If a field is out of its integer range, or `bodyLen`
 * differs from `body.length`.
 *
 * @example Usage
 * ```ts
 * import { encodeLegacyFrame, LEGACY_BODY_JSON } from "./legacy_frame.ts";
 * const body = new TextEncoder().encode("{}");
 * const frame = encodeLegacyFrame(
 *   { bodyType: LEGACY_BODY_JSON, msgType: 0, flowNo: 7, funcNo: 2000, errNo: 0 },
 *   body,
 * );
 * console.log(frame.length); // 49
 * ```
 */
export function encodeLegacyFrame(header: LegacyHeaderInit, body: Uint8Array): Uint8Array {
  const bodyLen = header.bodyLen ?? body.length;
  const originLen = header.originLen ?? body.length;
  checkInt("bodyType", header.bodyType, 0, 0xff);
  checkInt("msgType", header.msgType, 0, 0xff);
  checkInt("flowNo", header.flowNo, INT32_MIN, INT32_MAX);
  checkInt("funcNo", header.funcNo, 0, UINT32_MAX);
  checkInt("errNo", header.errNo, INT32_MIN, INT32_MAX);
  checkInt("originLen", originLen, 0, UINT32_MAX);
  checkInt("body length", body.length, 0, UINT32_MAX);
  if (bodyLen !== body.length) {
    throw new RangeError(
      `Cannot encode legacy frame: bodyLen ${bodyLen} differs from the body's ${body.length} bytes`,
    );
  }
  const out = new Uint8Array(LEGACY_HEADER_SIZE + body.length); // reserved bytes stay zero
  const view = new DataView(out.buffer);
  out.set(LEGACY_TAG, 0);
  out[5] = header.bodyType;
  out[6] = header.msgType;
  view.setInt32(7, header.flowNo, true);
  view.setUint32(11, header.funcNo, true);
  view.setInt32(15, header.errNo, true);
  view.setUint32(19, bodyLen, true);
  view.setUint32(23, originLen, true);
  out.set(body, LEGACY_HEADER_SIZE);
  return out;
}

function badTag(): ProxyError {
  return new ProxyError(
    ErrorCode.INVALID_REQUEST,
    `Cannot decode legacy frame: header does not start with "CCRPC"`,
  );
}

// True if bytes[from, to) agree with the tag on their first (up to 5) bytes.
function tagMatch(bytes: Uint8Array, from: number, to: number): boolean {
  const n = Math.min(to - from, LEGACY_TAG.length);
  for (let i = 0; i < n; i++) {
    if (bytes[from + i] !== LEGACY_TAG[i]) return false;
  }
  return true;
}

function readHeader(view: DataView, bytes: Uint8Array, pos: number): LegacyHeader {
  return {
    bodyType: bytes[pos + 5]!,
    msgType: bytes[pos + 6]!,
    flowNo: view.getInt32(pos + 7, true),
    funcNo: view.getUint32(pos + 11, true),
    errNo: view.getInt32(pos + 15, true),
    bodyLen: view.getUint32(pos + 19, true),
    originLen: view.getUint32(pos + 23, true),
  };
}

/**
 * Decodes a legacy frame header from the first {@linkcode LEGACY_HEADER_SIZE}
 * bytes of `bytes`. The reserved bytes are not checked.
 *
 * @param bytes At least 47 bytes, starting with the tag.
 * @returns The header fields.
 * @throws {RangeError} If `bytes` is shorter than the header.
 * @throws {ProxyError} `INVALID_REQUEST` if the tag is not `CCRPC`.
 *
 * @example Usage
 * ```ts
 * import { decodeLegacyHeader, encodeLegacyFrame } from "./legacy_frame.ts";
 * const frame = encodeLegacyFrame(
 *   { bodyType: 0x30, msgType: 0, flowNo: -5, funcNo: 1000, errNo: 0 },
 *   new Uint8Array(3),
 * );
 * console.log(decodeLegacyHeader(frame).flowNo); // -5
 * ```
 */
export function decodeLegacyHeader(bytes: Uint8Array): LegacyHeader {
  if (bytes.length < LEGACY_HEADER_SIZE) {
    throw new RangeError(
      `Cannot decode legacy header: need ${LEGACY_HEADER_SIZE} bytes, got ${bytes.length}`,
    );
  }
  if (!tagMatch(bytes, 0, LEGACY_HEADER_SIZE)) throw badTag();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return readHeader(view, bytes, 0);
}

/**
 * Tells, from the first bytes of a connection, whether it speaks the legacy
 * protocol. A MessagePack-RPC message starts with an array marker
 * (0x90-0x9f, 0xdc, 0xdd), never with `C` (0x43), so one byte decides.
 *
 * @param bytes The bytes received so far.
 * @returns `true` if the bytes are a prefix of `CCRPC` or start with it,
 * `false` if they cannot be a legacy frame, `undefined` if `bytes` is empty.
 *
 * @example Usage
 * ```ts
 * import { isLegacyPrefix } from "./legacy_frame.ts";
 * console.log(isLegacyPrefix(new TextEncoder().encode("CC"))); // true
 * console.log(isLegacyPrefix(new Uint8Array([0x94]))); // false
 * console.log(isLegacyPrefix(new Uint8Array())); // undefined
 * ```
 */
export function isLegacyPrefix(bytes: Uint8Array): boolean | undefined {
  if (bytes.length === 0) return undefined;
  return tagMatch(bytes, 0, bytes.length);
}

/**
 * The JSON body of a legacy error reply, byte for byte as the original
 * proxy writes it: `{"errno": N ,"errmsg":"TEXT","result":""}` (note the
 * spaces around N). `text` is escaped as a JSON string, which leaves plain
 * texts unchanged.
 *
 * @param errNo The error number, e.g. {@linkcode LEGACY_ERR_UNKNOWN}.
 * @param text The error text, e.g. {@linkcode LEGACY_ERR_UNKNOWN_TEXT}.
 * @returns The body text (encode it as UTF-8).
 * @throws {RangeError} If `errNo` is not an int32.
 *
 * @example Usage
 * ```ts
 * import { legacyErrorBody } from "./legacy_frame.ts";
 * console.log(legacyErrorBody(-2, "illegal request"));
 * // {"errno": -2 ,"errmsg":"illegal request","result":""}
 * ```
 */
export function legacyErrorBody(errNo: number, text: string): string {
  if (!Number.isInteger(errNo) || errNo < INT32_MIN || errNo > INT32_MAX) {
    throw new RangeError(`Cannot build legacy error body: errNo must be an int32, got ${errNo}`);
  }
  return `{"errno": ${errNo} ,"errmsg":${JSON.stringify(text)},"result":""}`;
}

/**
 * The header of the reply to `request`: its `bodyType`, `msgType`, `flowNo`
 * and `funcNo`, the given `errNo`, and `bodyLen` and `originLen` both set to
 * the reply body's length.
 *
 * @param request The request's header.
 * @param errNo The reply's error number (0 on success).
 * @param bodyLen The reply body's length in bytes.
 * @returns A new header.
 *
 * @example Usage
 * ```ts
 * import { LEGACY_PROXY_REPLY, replyHeaderFor } from "./legacy_frame.ts";
 * const request = {
 *   bodyType: 0x30, msgType: 0, flowNo: 9, funcNo: 2000, errNo: 0, bodyLen: 2, originLen: 2,
 * };
 * const reply = replyHeaderFor(request, 0, LEGACY_PROXY_REPLY.length);
 * console.log(reply.flowNo, reply.bodyLen); // 9 75
 * ```
 */
export function replyHeaderFor(
  request: LegacyHeader,
  errNo: number,
  bodyLen: number,
): LegacyHeader {
  return {
    bodyType: request.bodyType,
    msgType: request.msgType,
    flowNo: request.flowNo,
    funcNo: request.funcNo,
    errNo,
    bodyLen,
    originLen: bodyLen,
  };
}

/** Options of {@linkcode LegacyFrameDecoder}. */
export interface LegacyFrameDecoderOptions {
  /**
   * Largest body accepted (`body_len`), in bytes.
   * @default {8388608}
   */
  maxMessageSize?: number;
  /**
   * Largest read region offered by `reserve()`; the buffer starts small and
   * grows up to `LEGACY_HEADER_SIZE + maxMessageSize + readSize` and never
   * beyond, as long as `next()` is called until it returns `null` after each
   * `push` or `commit`, and pushed chunks are at most `readSize` bytes.
   * @default {65536}
   */
  readSize?: number;
}

/**
 * Incremental splitter of a legacy byte stream into whole frames; the
 * counterpart of `FrameDecoder` for the original C++ protocol.
 *
 * Bytes go in with {@linkcode LegacyFrameDecoder.push} (copy) or with
 * {@linkcode LegacyFrameDecoder.reserve} + {@linkcode LegacyFrameDecoder.commit}
 * (read straight into the decoder's buffer); call
 * {@linkcode LegacyFrameDecoder.next} until it returns `null` after each.
 * A frame's `body` is a view that stays valid only until the next `push` or
 * `reserve`; copy it to keep it longer.
 *
 * A wrong tag is rejected as soon as its first wrong byte arrives, and a
 * `body_len` above `maxMessageSize` as soon as the header is complete, before
 * the body is buffered; {@linkcode LegacyFrameDecoder.pendingHeader} then
 * still gives the header, so the caller can answer its `flowNo`.
 *
 * @example Usage
 * ```ts
 * import { encodeLegacyFrame, LegacyFrameDecoder } from "./legacy_frame.ts";
 * const bytes = encodeLegacyFrame(
 *   { bodyType: 0x30, msgType: 0, flowNo: 1, funcNo: 2000, errNo: 0 },
 *   new TextEncoder().encode("{}"),
 * );
 * const decoder = new LegacyFrameDecoder();
 * decoder.push(bytes.subarray(0, 20));
 * console.log(decoder.next()); // null: incomplete
 * decoder.push(bytes.subarray(20));
 * const frame = decoder.next()!;
 * console.log(frame.header.funcNo, new TextDecoder().decode(frame.body)); // 2000 {}
 * ```
 */
export class LegacyFrameDecoder {
  readonly #rb: ReadBuffer; // rb.start: first byte of the unfinished frame
  #header: LegacyHeader | null = null; // header of the current frame, once complete
  #failed: ProxyError | null = null;
  readonly #max: number;
  readonly #readSize: number;

  /** @param options Size limits. */
  constructor(options: LegacyFrameDecoderOptions = {}) {
    this.#max = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.#readSize = options.readSize ?? 64 * 1024;
    if (!Number.isSafeInteger(this.#max) || this.#max < 1) {
      throw new RangeError(`Cannot create decoder: maxMessageSize must be a positive integer`);
    }
    if (!Number.isSafeInteger(this.#readSize) || this.#readSize < 1) {
      throw new RangeError(`Cannot create decoder: readSize must be a positive integer`);
    }
    // An unfinished frame never needs more than header + limit + one read.
    this.#rb = new ReadBuffer(this.#readSize, LEGACY_HEADER_SIZE + this.#max + this.#readSize);
  }

  /** Number of bytes buffered and not yet returned as frames. */
  get buffered(): number {
    return this.#rb.buffered;
  }

  /** Bytes of buffer held now (for memory accounting). */
  get capacity(): number {
    return this.#rb.capacity;
  }

  /**
   * The buffered start of the frame being received (after an error: of the
   * offending frame). A view, valid until the next `push` or `reserve`.
   */
  partial(): Uint8Array {
    return this.#rb.partial();
  }

  /**
   * The header of the frame being received once its 47 bytes are in, else
   * `null`. After a `MESSAGE_TOO_LARGE` error, the offending frame's header
   * (also on the error's `data.header`), so a reply can echo its `flowNo`.
   */
  pendingHeader(): LegacyHeader | null {
    return this.#header;
  }

  /**
   * Returns a writable region at the end of the buffer (small on a quiet
   * connection, up to `readSize` on a busy one). Fill it, then call
   * {@linkcode LegacyFrameDecoder.commit} with the number of bytes written.
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
   * Returns the next whole frame, or `null` when more bytes are needed. The
   * body is a view valid until the next `push` or `reserve`.
   *
   * @throws {ProxyError} `INVALID_REQUEST` (the tag is not `CCRPC`) or
   * `MESSAGE_TOO_LARGE` (`body_len` above `maxMessageSize`; `data` is
   * `{ limit, header }`). After that the stream cannot be resynchronised and
   * every later call throws the same error.
   */
  next(): LegacyFrame | null {
    if (this.#failed) throw this.#failed;
    const rb = this.#rb;
    const start = rb.start;
    const avail = rb.end - start;
    let header = this.#header;
    if (header === null) {
      if (avail === 0) return null;
      if (!tagMatch(rb.bytes, start, rb.end)) {
        this.#failed = badTag();
        throw this.#failed;
      }
      if (avail < LEGACY_HEADER_SIZE) return null;
      header = readHeader(rb.view, rb.bytes, start);
      this.#header = header;
      if (header.bodyLen > this.#max) {
        this.#failed = new ProxyError(
          ErrorCode.MESSAGE_TOO_LARGE,
          `Cannot accept legacy frame: body of ${header.bodyLen} bytes exceeds the limit of ${this.#max} bytes`,
          { data: { limit: this.#max, header: { ...header } } },
        );
        throw this.#failed;
      }
    }
    const size = LEGACY_HEADER_SIZE + header.bodyLen;
    if (avail < size) return null;
    const body = rb.bytes.subarray(start + LEGACY_HEADER_SIZE, start + size);
    rb.start = start + size;
    this.#header = null;
    return { header, body };
  }
}
