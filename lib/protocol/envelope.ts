/**
 * Reads and rewrites the envelope of a MessagePack-RPC message (type, msgid,
 * method) without decoding its params, result or error.
 *
 * This is the proxy's hot path: it routes a request by looking only at its
 * first bytes, then forwards the rest of the frame untouched with a new msgid.
 *
 * @module
 */

import { ErrorCode } from "./errors.ts";
import { InvalidMessageError, NOTIFICATION, REQUEST, RESPONSE } from "./message.ts";
import { type Span, textSpan } from "./_text_span.ts";

/** What {@linkcode readEnvelope} found; reused between calls to avoid allocation. */
export interface Envelope {
  /** 0 request, 1 response, 2 notification. */
  type: number;
  /** The msgid (requests and responses); -1 for notifications. */
  msgid: number;
  /** The method (requests and notifications); "" for responses. */
  method: string;
  /**
   * Offset of the first byte after the msgid (requests, responses) or after
   * the type tag (notifications): the part copied when rewriting the msgid.
   */
  tail: number;
  /**
   * Offset of the params (requests, notifications) or of the error, followed
   * by the result (responses).
   */
  body: number;
}

/** Creates an {@linkcode Envelope} to pass to {@linkcode readEnvelope}. */
export function createEnvelope(): Envelope {
  return { type: 0, msgid: -1, method: "", tail: 0, body: 0 };
}

/** The most bytes {@linkcode writeEnvelopeHead} writes. */
export const MAX_ENVELOPE_HEAD = 11;

const utf8 = new TextDecoder("utf-8", { fatal: true });

// Frames are views into a connection's read buffer, which rarely changes: one
// DataView per buffer (offsets are absolute) instead of one per frame.
let cachedBuffer: ArrayBufferLike | null = null;
let cachedView: DataView | null = null;

function viewOf(bytes: Uint8Array): DataView {
  if (bytes.buffer !== cachedBuffer) {
    cachedBuffer = bytes.buffer;
    cachedView = new DataView(bytes.buffer);
  }
  return cachedView!;
}

// Scratch register: the readers below return a value and leave the offset
// after it here, so the hot path allocates no tuples. Always written before read.
let intEnd = 0;
// Where readName found the name's bytes.
const span: Span = { start: 0, end: 0 };
// Set by readName when the bytes of a name are not UTF-8 (not just "no string").
let badUtf8 = false;

/**
 * Reads an integer at pos: a number when it is a safe integer, a bigint
 * beyond (an int64/uint64 msgid that can be echoed but not used), undefined
 * when there is no integer there (floats are not msgids).
 */
function readInt(frame: Uint8Array, view: DataView, pos: number): number | bigint | undefined {
  const b = frame[pos];
  if (b === undefined) return undefined;
  if (b <= 0x7f) {
    intEnd = pos + 1;
    return b;
  }
  if (b >= 0xe0) {
    intEnd = pos + 1;
    return b - 0x100;
  }
  if (pos + 1 >= frame.length) return undefined;
  const at = frame.byteOffset + pos + 1;
  switch (b) {
    case 0xcc:
      intEnd = pos + 2;
      return frame[pos + 1];
    case 0xcd:
      intEnd = pos + 3;
      return pos + 3 <= frame.length ? view.getUint16(at) : undefined;
    case 0xce:
      intEnd = pos + 5;
      return pos + 5 <= frame.length ? view.getUint32(at) : undefined;
    case 0xcf: {
      intEnd = pos + 9;
      if (pos + 9 > frame.length) return undefined;
      const v = view.getBigUint64(at);
      return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
    case 0xd0:
      intEnd = pos + 2;
      return view.getInt8(at);
    case 0xd1:
      intEnd = pos + 3;
      return pos + 3 <= frame.length ? view.getInt16(at) : undefined;
    case 0xd2:
      intEnd = pos + 5;
      return pos + 5 <= frame.length ? view.getInt32(at) : undefined;
    case 0xd3: {
      intEnd = pos + 9;
      if (pos + 9 > frame.length) return undefined;
      const v = view.getBigInt64(at);
      return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(v)
        : v;
    }
  }
  return undefined;
}

// Reads a method name at pos: a str, or a bin (old MessagePack had no str/bin
// split, and some clients still send names that way), as UTF-8. Sets intEnd.
function readName(frame: Uint8Array, pos: number): string | undefined {
  badUtf8 = false;
  if (!textSpan(frame, pos, span)) return undefined;
  const { start, end } = span;
  const len = end - start;
  intEnd = end;
  // Method names are few and short: the same name comes back as the same
  // string, without building one per message.
  if (len <= 32) {
    const slot = (len * 31 + (frame[start] ?? 0) + (frame[end - 1] ?? 0) * 7) & (NAMES - 1);
    const known = nameBytes[slot];
    if (known !== undefined && known.length === len) {
      let i = 0;
      while (i < len && known[i] === frame[start + i]) i++;
      if (i === len) return nameStrings[slot];
    }
    let s = "";
    for (let i = start; i < end; i++) {
      const c = frame[i]!;
      if (c >= 0x80) return decodeUtf8(frame.subarray(start, end));
      s += String.fromCharCode(c);
    }
    nameBytes[slot] = frame.slice(start, end);
    nameStrings[slot] = s;
    return s;
  }
  return decodeUtf8(frame.subarray(start, end));
}

// A small direct-mapped cache of method names by their bytes.
const NAMES = 64;
const nameBytes: (Uint8Array | undefined)[] = new Array(NAMES);
const nameStrings: string[] = new Array(NAMES);

function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    badUtf8 = true;
    return undefined;
  }
}

function nameError(what: string): string {
  return `Cannot accept ${what}: method is not ${badUtf8 ? "valid UTF-8" : "a string"}`;
}

function arrayLength(frame: Uint8Array, view: DataView): number {
  const b = frame[0]!;
  if (b >= 0x90 && b <= 0x9f) {
    intEnd = 1;
    return b & 0x0f;
  }
  if (b === 0xdc && frame.length >= 3) {
    intEnd = 3;
    return view.getUint16(frame.byteOffset + 1);
  }
  if (b === 0xdd && frame.length >= 5) {
    intEnd = 5;
    return view.getUint32(frame.byteOffset + 1);
  }
  return -1;
}

function isArrayAt(frame: Uint8Array, pos: number): boolean {
  const b = frame[pos];
  return b !== undefined && ((b >= 0x90 && b <= 0x9f) || b === 0xdc || b === 0xdd);
}

function invalid(message: string, msgid?: number | bigint): InvalidMessageError {
  return new InvalidMessageError(ErrorCode.INVALID_REQUEST, message, msgid);
}

/**
 * Reads the envelope of one whole frame into `out`.
 *
 * The msgid rule, the same on every path: a msgid is an integer from
 * -(2^53-1) to 2^53-1. A request whose msgid is an integer beyond that is
 * refused with `INVALID_REQUEST` carrying that msgid (as a bigint, so it can
 * be echoed exactly); a msgid that is not an integer at all cannot be echoed,
 * so its error carries none.
 *
 * @param frame One whole MessagePack object (from `FrameDecoder.next()`).
 * @param out Filled in and returned.
 * @returns `out`.
 * @throws {InvalidMessageError} `INVALID_REQUEST` (with the msgid when known).
 */
export function readEnvelope(frame: Uint8Array, out: Envelope): Envelope {
  const view = viewOf(frame);
  const len = arrayLength(frame, view);
  if (len < 0) throw invalid("Cannot accept message: not an array");
  const type = frame[intEnd];
  const after = intEnd + 1;
  if (type === REQUEST || type === RESPONSE) {
    const msgid = readInt(frame, view, after);
    // Only a request is answered, so only its errors carry the msgid.
    const answerTo = type === REQUEST ? msgid : undefined;
    if (len !== 4) {
      throw invalid(`Cannot accept message: expected 4 elements, got ${len}`, answerTo);
    }
    if (msgid === undefined) throw invalid("Cannot accept message: msgid is not an integer");
    if (typeof msgid === "bigint") {
      throw invalid(`Cannot accept message: msgid ${msgid} is beyond 2^53`, answerTo);
    }
    out.type = type;
    out.msgid = msgid;
    out.tail = intEnd;
    if (type === RESPONSE) {
      out.method = "";
      out.body = intEnd;
      return out;
    }
    const method = readName(frame, intEnd);
    if (method === undefined) throw invalid(nameError("request"), msgid);
    if (!isArrayAt(frame, intEnd)) {
      throw invalid("Cannot accept request: params is not an array", msgid);
    }
    out.method = method;
    out.body = intEnd;
    return out;
  }
  if (type === NOTIFICATION) {
    if (len !== 3) throw invalid(`Cannot accept notification: expected 3 elements, got ${len}`);
    const method = readName(frame, after);
    if (method === undefined) throw invalid(nameError("notification"));
    if (!isArrayAt(frame, intEnd)) {
      throw invalid("Cannot accept notification: params is not an array");
    }
    out.type = NOTIFICATION;
    out.msgid = -1;
    out.method = method;
    out.tail = after;
    out.body = intEnd;
    return out;
  }
  throw invalid(`Cannot accept message: unknown type tag ${String(type)}`);
}

/**
 * Writes `[type, msgid,` (a 4-element array header, the type tag and the
 * msgid) at `offset`; followed by a frame's tail it makes the frame with a new
 * msgid.
 *
 * @returns The offset after the written bytes (at most {@linkcode MAX_ENVELOPE_HEAD} later).
 */
export function writeEnvelopeHead(
  buf: Uint8Array,
  offset: number,
  type: number,
  msgid: number,
): number {
  buf[offset++] = 0x94;
  buf[offset++] = type;
  return writeInt(buf, offset, msgid);
}

/** Writes an integer in its shortest MessagePack form; returns the new offset. */
export function writeInt(buf: Uint8Array, offset: number, v: number): number {
  if (v >= 0) {
    if (v <= 0x7f) {
      buf[offset] = v;
      return offset + 1;
    }
    if (v <= 0xff) {
      buf[offset] = 0xcc;
      buf[offset + 1] = v;
      return offset + 2;
    }
    if (v <= 0xffff) {
      buf[offset] = 0xcd;
      buf[offset + 1] = v >>> 8;
      buf[offset + 2] = v & 0xff;
      return offset + 3;
    }
    if (v <= 0xffffffff) {
      buf[offset] = 0xce;
      buf[offset + 1] = v >>> 24;
      buf[offset + 2] = (v >>> 16) & 0xff;
      buf[offset + 3] = (v >>> 8) & 0xff;
      buf[offset + 4] = v & 0xff;
      return offset + 5;
    }
    buf[offset] = 0xcf;
    new DataView(buf.buffer, buf.byteOffset).setBigUint64(offset + 1, BigInt(v));
    return offset + 9;
  }
  if (v >= -32) {
    buf[offset] = v & 0xff;
    return offset + 1;
  }
  if (v >= -0x80) {
    buf[offset] = 0xd0;
    buf[offset + 1] = v & 0xff;
    return offset + 2;
  }
  if (v >= -0x8000) {
    buf[offset] = 0xd1;
    buf[offset + 1] = (v >> 8) & 0xff;
    buf[offset + 2] = v & 0xff;
    return offset + 3;
  }
  if (v >= -0x80000000) {
    buf[offset] = 0xd2;
    buf[offset + 1] = (v >>> 24) & 0xff;
    buf[offset + 2] = (v >>> 16) & 0xff;
    buf[offset + 3] = (v >>> 8) & 0xff;
    buf[offset + 4] = v & 0xff;
    return offset + 5;
  }
  buf[offset] = 0xd3;
  new DataView(buf.buffer, buf.byteOffset).setBigInt64(offset + 1, BigInt(v));
  return offset + 9;
}

/**
 * Reads the msgid of a request from the first bytes of a message, which may be
 * incomplete (e.g. a message rejected as too large while still arriving).
 *
 * @returns The msgid (a bigint beyond 2^53), or undefined when the bytes do
 * not start a request.
 */
export function peekRequestMsgid(bytes: Uint8Array): number | bigint | undefined {
  if (bytes.length < 3) return undefined;
  const view = viewOf(bytes);
  if (arrayLength(bytes, view) !== 4 || bytes[intEnd] !== REQUEST) return undefined;
  return readInt(bytes, view, intEnd + 1);
}

/**
 * The bytes an integer takes in its shortest MessagePack form.
 *
 * @example Usage
 * ```ts
 * import { intLength } from "./envelope.ts";
 * console.log(intLength(1), intLength(200), intLength(-200), intLength(2 ** 32)); // 1 2 3 9
 * ```
 */
export function intLength(v: number): number {
  if (v >= 0) return v < 0x80 ? 1 : v < 0x100 ? 2 : v < 0x10000 ? 3 : v < 0x100000000 ? 5 : 9;
  return v >= -0x20 ? 1 : v >= -0x80 ? 2 : v >= -0x8000 ? 3 : v >= -0x80000000 ? 5 : 9;
}

/**
 * The `tail` of a request made by `encodeRequest(msgid, ...)`: the offset
 * after its msgid, known without reading the bytes back.
 */
export function requestTail(msgid: number): number {
  return 2 + intLength(msgid);
}
