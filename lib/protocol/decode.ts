/**
 * Plain MessagePack decoding that loses nothing:
 *
 * - integers are numbers when they are safe integers, `bigint` beyond
 *   (int64/uint64 up to 2^63-1, down to -2^63, up to 2^64-1);
 * - floats are numbers, but a float whose value is a whole number is a
 *   {@linkcode Float} (a plain number would be sent back as an integer);
 * - a str is a string, or a {@linkcode RawString} when its bytes are not
 *   valid UTF-8; a bin is a `Uint8Array` (a copy: never a view of the input);
 * - a map whose keys are all strings is a plain object (a `__proto__` key is
 *   an own property like any other), any other map a `Map`;
 * - the timestamp extension (-1) is a {@linkcode Timestamp}, any other
 *   extension an {@linkcode Ext} with its bytes.
 *
 * Nesting is bounded (`maxDepth`), so hostile input cannot exhaust the stack.
 *
 * @module
 */

import { ErrorCode, ProxyError } from "./errors.ts";
import { DEFAULT_MAX_DEPTH } from "./encode.ts";
import { Ext, Float, RawString, Timestamp } from "./values.ts";

/** Options of {@linkcode decodeValue}. */
export interface DecodeOptions {
  /**
   * Deepest nesting of arrays and maps accepted; deeper is a `PARSE_ERROR`.
   * @default {512}
   */
  maxDepth?: number;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function fail(message: string): never {
  throw new ProxyError(ErrorCode.PARSE_ERROR, `Cannot decode MessagePack: ${message}`);
}

/**
 * A decoder over one buffer; reused, since decoding runs no user code and so
 * never re-enters.
 */
class Decoder {
  bytes: Uint8Array = new Uint8Array(0);
  view: DataView = new DataView(new ArrayBuffer(0));
  pos = 0;
  end = 0;
  maxDepth = DEFAULT_MAX_DEPTH;

  reset(bytes: Uint8Array, start: number, end: number, maxDepth: number): void {
    this.view = new DataView(bytes.buffer);
    this.bytes = bytes;
    this.pos = bytes.byteOffset + start;
    this.end = bytes.byteOffset + end;
    this.maxDepth = maxDepth;
  }

  // Offsets are absolute in the underlying buffer, so one DataView serves.
  #need(n: number): number {
    const p = this.pos;
    if (p + n > this.end) fail("unexpected end of input");
    this.pos = p + n;
    return p;
  }

  #u8(): number {
    return this.view.getUint8(this.#need(1));
  }

  value(depth: number): unknown {
    const b = this.#u8();
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b <= 0x8f) return this.#map(b & 0x0f, depth);
    if (b <= 0x9f) return this.#array(b & 0x0f, depth);
    if (b <= 0xbf) return this.#str(b & 0x1f);
    const view = this.view;
    switch (b) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.#bin(this.#u8());
      case 0xc5:
        return this.#bin(view.getUint16(this.#need(2)));
      case 0xc6:
        return this.#bin(view.getUint32(this.#need(4)));
      case 0xc7:
        return this.#ext(this.#u8());
      case 0xc8:
        return this.#ext(view.getUint16(this.#need(2)));
      case 0xc9:
        return this.#ext(view.getUint32(this.#need(4)));
      case 0xca:
        return float(view.getFloat32(this.#need(4)));
      case 0xcb:
        return float(view.getFloat64(this.#need(8)));
      case 0xcc:
        return this.#u8();
      case 0xcd:
        return view.getUint16(this.#need(2));
      case 0xce:
        return view.getUint32(this.#need(4));
      case 0xcf: {
        const p = this.#need(8);
        const hi = view.getUint32(p);
        if (hi < 0x200000) return hi * 0x100000000 + view.getUint32(p + 4);
        return view.getBigUint64(p);
      }
      case 0xd0:
        return view.getInt8(this.#need(1));
      case 0xd1:
        return view.getInt16(this.#need(2));
      case 0xd2:
        return view.getInt32(this.#need(4));
      case 0xd3: {
        const p = this.#need(8);
        const hi = view.getInt32(p);
        if (hi >= -0x200000 && hi < 0x200000) {
          const v = hi * 0x100000000 + view.getUint32(p + 4);
          if (Number.isSafeInteger(v)) return v;
        }
        return view.getBigInt64(p);
      }
      case 0xd4:
        return this.#ext(1);
      case 0xd5:
        return this.#ext(2);
      case 0xd6:
        return this.#ext(4);
      case 0xd7:
        return this.#ext(8);
      case 0xd8:
        return this.#ext(16);
      case 0xd9:
        return this.#str(this.#u8());
      case 0xda:
        return this.#str(view.getUint16(this.#need(2)));
      case 0xdb:
        return this.#str(view.getUint32(this.#need(4)));
      case 0xdc:
        return this.#array(view.getUint16(this.#need(2)), depth);
      case 0xdd:
        return this.#array(view.getUint32(this.#need(4)), depth);
      case 0xde:
        return this.#map(view.getUint16(this.#need(2)), depth);
      case 0xdf:
        return this.#map(view.getUint32(this.#need(4)), depth);
      default: // 0xc1
        this.pos--;
        return fail(`byte 0x${b.toString(16)} is not MessagePack`);
    }
  }

  #enter(n: number, depth: number): void {
    if (depth >= this.maxDepth) fail(`nested deeper than ${this.maxDepth} levels`);
    // Every item takes at least one byte: a count beyond the input is a lie,
    // refused before anything is allocated for it.
    if (n > this.end - this.pos) fail(`${n} items announced, fewer bytes left`);
  }

  #array(n: number, depth: number): unknown[] {
    this.#enter(n, depth);
    const out = new Array(n);
    for (let i = 0; i < n; i++) out[i] = this.value(depth + 1);
    return out;
  }

  #map(n: number, depth: number): Record<string, unknown> | Map<unknown, unknown> {
    this.#enter(n * 2, depth);
    const obj: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const key = this.value(depth + 1);
      if (typeof key !== "string") return this.#asMap(obj, key, i, n, depth);
      const value = this.value(depth + 1);
      if (key === "__proto__") {
        Object.defineProperty(obj, key, {
          value,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      } else obj[key] = value;
    }
    return obj;
  }

  // A key that is not a string: the map so far and the rest become a Map.
  #asMap(
    obj: Record<string, unknown>,
    key: unknown,
    i: number,
    n: number,
    depth: number,
  ): Map<unknown, unknown> {
    const map = new Map<unknown, unknown>(Object.entries(obj));
    map.set(key, this.value(depth + 1));
    for (let j = i + 1; j < n; j++) {
      const k = this.value(depth + 1);
      map.set(k, this.value(depth + 1));
    }
    return map;
  }

  #str(n: number): string | RawString {
    const p = this.#need(n);
    const bytes = this.bytes;
    const start = p - bytes.byteOffset;
    // Short ASCII (keys, method names): no TextDecoder call.
    if (n <= 32) {
      let s = "";
      let i = 0;
      for (; i < n; i++) {
        const c = bytes[start + i]!;
        if (c >= 0x80) break;
        s += String.fromCharCode(c);
      }
      if (i === n) return s;
    }
    const slice = bytes.subarray(start, start + n);
    try {
      return utf8.decode(slice);
    } catch {
      return new RawString(slice.slice());
    }
  }

  #bin(n: number): Uint8Array {
    const p = this.#need(n) - this.bytes.byteOffset;
    return this.bytes.slice(p, p + n);
  }

  #ext(n: number): Timestamp | Ext {
    const type = this.view.getInt8(this.#need(1));
    const p = this.#need(n);
    if (type === -1) {
      const t = timestamp(this.view, p, n);
      if (t) return t;
    }
    const start = p - this.bytes.byteOffset;
    return new Ext(type, this.bytes.slice(start, start + n));
  }
}

// A whole-number float keeps its type; any other is an ordinary number.
function float(v: number): number | Float {
  return Number.isSafeInteger(v) && !(v === 0 && 1 / v < 0) ? new Float(v) : v;
}

// The three timestamp forms; anything else under type -1 is carried as an Ext.
function timestamp(view: DataView, p: number, n: number): Timestamp | null {
  if (n === 4) return new Timestamp(view.getUint32(p), 0);
  if (n === 8) {
    const v = view.getBigUint64(p);
    const ns = Number(v >> 34n);
    return ns <= 999_999_999 ? new Timestamp(v & 0x3ffffffffn, ns) : null;
  }
  if (n === 12) {
    const ns = view.getUint32(p);
    return ns <= 999_999_999 ? new Timestamp(view.getBigInt64(p + 4), ns) : null;
  }
  return null;
}

const shared = new Decoder();

/**
 * Decodes exactly one MessagePack value filling `bytes[start, end)`.
 *
 * @param bytes The input.
 * @param options Nesting limit, and the part of `bytes` to read.
 * @returns The value (see the module doc for the mapping).
 * @throws {ProxyError} `PARSE_ERROR` when the bytes are not one valid value,
 * or nest deeper than `maxDepth`.
 *
 * @example Usage
 * ```ts
 * import { decodeValue } from "./decode.ts";
 * console.log(decodeValue(new Uint8Array([0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))); // 18446744073709551615n
 * ```
 */
export function decodeValue(
  bytes: Uint8Array,
  options: DecodeOptions & { start?: number; end?: number } = {},
): unknown {
  return decodeSequence(bytes, 1, options)[0];
}

/**
 * Decodes `count` MessagePack values that follow one another and fill
 * `bytes[start, end)` exactly (e.g. a response's error and result).
 *
 * @throws {ProxyError} `PARSE_ERROR`, as {@linkcode decodeValue}.
 *
 * @param bytes The buffer.
 * @param count How many values.
 * @param options Nesting limit, and the region of `bytes` to read.
 * @returns The values.
 *
 * @example Two values back to back
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeSequence } from "./decode.ts";
 * assert.deepEqual(decodeSequence(new Uint8Array([0xc0, 0xa2, 0x6f, 0x6b]), 2), [null, "ok"]);
 * ```
 */
export function decodeSequence(
  bytes: Uint8Array,
  count: number,
  options: DecodeOptions & { start?: number; end?: number } = {},
): unknown[] {
  const d = shared;
  d.reset(
    bytes,
    options.start ?? 0,
    options.end ?? bytes.length,
    options.maxDepth ?? DEFAULT_MAX_DEPTH,
  );
  try {
    const out = new Array(count);
    for (let i = 0; i < count; i++) out[i] = d.value(0);
    if (d.pos !== d.end) fail(`${d.end - d.pos} bytes after the end of the value`);
    return out;
  } finally {
    // Do not keep a large input alive through the shared decoder.
    d.bytes = EMPTY;
    d.view = EMPTY_VIEW;
  }
}

const EMPTY = new Uint8Array(0);
const EMPTY_VIEW = new DataView(EMPTY.buffer);
