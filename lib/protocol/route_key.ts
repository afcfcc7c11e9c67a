/**
 * The routing key of a request: a value found by a dotted path into the
 * request's first parameter, read straight from the frame's bytes (nothing
 * else of the params is decoded, so the cost does not grow with them and
 * hostile nesting is only skipped over).
 *
 * @module
 */

import { type Span, textSpan } from "./_text_span.ts";

/**
 * Parses a `--route-key` path such as `user_id` or `0.tenant`.
 *
 * @throws {TypeError} On an empty path or an empty segment.
 *
 * @example Usage
 * ```ts
 * import { parseRoutePath } from "./route_key.ts";
 * console.log(parseRoutePath("0.tenant")); // ["0", "tenant"]
 * ```
 */
export function parseRoutePath(path: string): string[] {
  const segments = path.split(".");
  if (segments.some((s) => s === "")) {
    throw new TypeError(`Cannot use route key path "${path}": empty segment`);
  }
  return segments;
}

const utf8 = new TextDecoder();
const span: Span = { start: 0, end: 0 }; // where readText found the text

/**
 * Follows `path` into the first element of the array at `offset` (a
 * request's params): `user_id` reads `params[0].user_id`, `0.tenant` reads
 * `params[0][0].tenant`. A string or a number found there is the key (a
 * number as its decimal text).
 *
 * @param frame A whole message (its structure already checked by `FrameDecoder`).
 * @param offset Where the params array starts (`Envelope.body`).
 * @param path The parsed path.
 * @returns The key, or undefined when there is none.
 *
 * @example Usage
 * ```ts
 * import { encodeValue } from "./encode.ts";
 * import { readRouteKey } from "./route_key.ts";
 * const params = encodeValue([{ user_id: "allen", data: [1, 2, 3] }]);
 * console.log(readRouteKey(params, 0, ["user_id"])); // allen
 * ```
 */
export function readRouteKey(
  frame: Uint8Array,
  offset: number,
  path: readonly string[],
): string | undefined {
  // Bytes that end early (never the case for a frame FrameDecoder accepted)
  // make a DataView read throw: no key.
  try {
    return follow(frame, offset, path);
  } catch {
    return undefined;
  }
}

function follow(frame: Uint8Array, offset: number, path: readonly string[]): string | undefined {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  let pos = intoArray(frame, view, offset, 0);
  for (const segment of path) {
    if (pos < 0 || pos >= frame.length) return undefined;
    const mapLen = mapLength(frame, view, pos);
    if (mapLen < 0) {
      pos = /^\d+$/.test(segment) ? intoArray(frame, view, pos, Number(segment)) : -1;
      continue;
    }
    pos = head;
    let found = -1;
    for (let i = 0; i < mapLen && found < 0 && pos >= 0; i++) {
      const key = readText(frame, pos);
      pos = key === undefined ? skip(frame, view, pos) : head; // now at the value
      if (pos < 0) break;
      if (key === segment) found = pos;
      else pos = skip(frame, view, pos);
    }
    pos = found;
  }
  if (pos < 0) return undefined;
  return readText(frame, pos) ?? readNumber(frame, view, pos);
}

// After a header read by the helpers below: the offset after it.
let head = 0;

// The offset of element `index` of the array at pos, or -1.
function intoArray(frame: Uint8Array, view: DataView, pos: number, index: number): number {
  const b = frame[pos];
  if (b === undefined) return -1;
  let n: number;
  if (b >= 0x90 && b <= 0x9f) {
    n = b & 0x0f;
    pos += 1;
  } else if (b === 0xdc && pos + 3 <= frame.length) {
    n = view.getUint16(pos + 1);
    pos += 3;
  } else if (b === 0xdd && pos + 5 <= frame.length) {
    n = view.getUint32(pos + 1);
    pos += 5;
  } else return -1;
  if (index >= n) return -1;
  for (let i = 0; i < index && pos >= 0; i++) pos = skip(frame, view, pos);
  return pos;
}

function mapLength(frame: Uint8Array, view: DataView, pos: number): number {
  const b = frame[pos]!;
  if (b >= 0x80 && b <= 0x8f) {
    head = pos + 1;
    return b & 0x0f;
  }
  if (b === 0xde && pos + 3 <= frame.length) {
    head = pos + 3;
    return view.getUint16(pos + 1);
  }
  if (b === 0xdf && pos + 5 <= frame.length) {
    head = pos + 5;
    return view.getUint32(pos + 1);
  }
  return -1;
}

// A str (or a bin, as old clients send text) at pos; sets head after it.
function readText(frame: Uint8Array, pos: number): string | undefined {
  if (!textSpan(frame, pos, span)) return undefined;
  head = span.end;
  return utf8.decode(frame.subarray(span.start, span.end));
}

function readNumber(frame: Uint8Array, view: DataView, pos: number): string | undefined {
  const b = frame[pos];
  if (b === undefined) return undefined;
  if (b <= 0x7f) return String(b);
  if (b >= 0xe0) return String(b - 0x100);
  const size = ({
    0xcc: 1,
    0xcd: 2,
    0xce: 4,
    0xcf: 8,
    0xd0: 1,
    0xd1: 2,
    0xd2: 4,
    0xd3: 8,
    0xca: 4,
    0xcb: 8,
  } as Record<number, number>)[b];
  if (size === undefined || pos + 1 + size > frame.length) return undefined;
  const at = pos + 1;
  switch (b) {
    case 0xcc:
      return String(view.getUint8(at));
    case 0xcd:
      return String(view.getUint16(at));
    case 0xce:
      return String(view.getUint32(at));
    case 0xcf:
      return String(view.getBigUint64(at));
    case 0xd0:
      return String(view.getInt8(at));
    case 0xd1:
      return String(view.getInt16(at));
    case 0xd2:
      return String(view.getInt32(at));
    case 0xd3:
      return String(view.getBigInt64(at));
    case 0xca: {
      const v = view.getFloat32(at);
      return Number.isFinite(v) ? String(v) : undefined;
    }
    default: {
      const v = view.getFloat64(at);
      return Number.isFinite(v) ? String(v) : undefined;
    }
  }
}

// The offset after the value at pos (iterative: nesting costs no stack), or -1.
function skip(frame: Uint8Array, view: DataView, pos: number): number {
  let remaining = 1;
  const end = frame.length;
  while (remaining > 0) {
    if (pos >= end) return -1;
    const b = frame[pos]!;
    remaining--;
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) pos += 1;
    else if (b <= 0x8f) {
      remaining += (b & 0x0f) * 2;
      pos += 1;
    } else if (b <= 0x9f) {
      remaining += b & 0x0f;
      pos += 1;
    } else if (b <= 0xbf) pos += 1 + (b & 0x1f);
    else {
      switch (b) {
        case 0xc4:
        case 0xd9:
          pos += 2 + (frame[pos + 1] ?? 0);
          break;
        case 0xc5:
        case 0xda:
          pos += 3 + view.getUint16(pos + 1);
          break;
        case 0xc6:
        case 0xdb:
          pos += 5 + view.getUint32(pos + 1);
          break;
        case 0xc7:
          pos += 3 + (frame[pos + 1] ?? 0);
          break;
        case 0xc8:
          pos += 4 + view.getUint16(pos + 1);
          break;
        case 0xc9:
          pos += 6 + view.getUint32(pos + 1);
          break;
        case 0xca:
        case 0xce:
        case 0xd2:
          pos += 5;
          break;
        case 0xcb:
        case 0xcf:
        case 0xd3:
          pos += 9;
          break;
        case 0xcc:
        case 0xd0:
          pos += 2;
          break;
        case 0xcd:
        case 0xd1:
          pos += 3;
          break;
        case 0xd4:
          pos += 3;
          break;
        case 0xd5:
          pos += 4;
          break;
        case 0xd6:
          pos += 6;
          break;
        case 0xd7:
          pos += 10;
          break;
        case 0xd8:
          pos += 18;
          break;
        case 0xdc:
          remaining += view.getUint16(pos + 1);
          pos += 3;
          break;
        case 0xdd:
          remaining += view.getUint32(pos + 1);
          pos += 5;
          break;
        case 0xde:
          remaining += view.getUint16(pos + 1) * 2;
          pos += 3;
          break;
        case 0xdf:
          remaining += view.getUint32(pos + 1) * 2;
          pos += 5;
          break;
        default:
          return -1;
      }
    }
  }
  return pos <= end ? pos : -1;
}
