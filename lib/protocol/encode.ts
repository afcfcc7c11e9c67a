/**
 * Plain MessagePack encoding, in the canonical (shortest) form every
 * MessagePack library writes, so a value decoded here and encoded again comes
 * out byte for byte as another library wrote it:
 *
 * - a number that is a safe integer is an integer (positive: the unsigned
 *   forms, negative: the signed ones), any other number a float64; a `bigint`
 *   is an integer (int64/uint64 at most);
 * - a string is a str, a `Uint8Array` (or `ArrayBuffer`) a bin;
 * - an array is an array; a `Map` a map with keys of any type; any other
 *   object a map of its own enumerable properties (those whose value is
 *   `undefined` or a function are left out, as `JSON.stringify` does);
 * - `Date` and {@linkcode Timestamp} are timestamps (extension -1);
 *   {@linkcode Ext}, {@linkcode Float} and {@linkcode RawString} are what
 *   they say; `null` and `undefined` are nil.
 *
 * No codec-specific extensions: what cannot be expressed in plain MessagePack
 * (a function, a symbol, a typed array other than bytes, a `Set`, a cycle) is
 * refused with a `TypeError`.
 *
 * @module
 */

import { Ext, Float, RawString, Timestamp } from "./values.ts";

/**
 * Default deepest nesting of arrays and maps, encoding and decoding.
 *
 * @example Deeper is refused, both ways
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_MAX_DEPTH, encodeValue } from "./encode.ts";
 * import { decodeValue } from "./decode.ts";
 * let deep: unknown = [];
 * for (let i = 1; i < DEFAULT_MAX_DEPTH; i++) deep = [deep];
 * assert.deepEqual(decodeValue(encodeValue(deep)), deep); // 512 levels
 * assert.throws(() => encodeValue([deep]), TypeError);
 * const bytes = new Uint8Array(DEFAULT_MAX_DEPTH + 1).fill(0x91); // [[[...]]]
 * bytes[DEFAULT_MAX_DEPTH] = 0x90;
 * assert.throws(() => decodeValue(bytes), { code: "PARSE_ERROR" });
 * ```
 */
export const DEFAULT_MAX_DEPTH = 512;

/** Options of {@linkcode Encoder}. */
export interface EncoderOptions {
  /**
   * Deepest nesting of arrays and maps; deeper (or a cycle) is a `TypeError`.
   * @default {512}
   */
  maxDepth?: number;
}

const UINT64_MAX = 2n ** 64n - 1n;
const INT64_MIN = -(2n ** 63n);
const textEncoder = new TextEncoder();

/**
 * A reusable encoder: one growing buffer, each call returns a fresh copy of
 * what it wrote.
 *
 * @example Usage
 * ```ts
 * import { Encoder } from "./encode.ts";
 * const bytes = new Encoder().encode([1, 2 ** 40, "a"]);
 * console.log(bytes); // Uint8Array(13) [147, 1, 207, 0, 0, 1, 0, 0, 0, 0, 0, 161, 97]
 * ```
 */
export class Encoder {
  #buf = new Uint8Array(4096);
  #view = new DataView(this.#buf.buffer);
  #pos = 0;
  #busy = false;
  readonly #maxDepth: number;

  /** @param options The nesting limit. */
  constructor(options: EncoderOptions = {}) {
    this.#maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  }

  /**
   * Encodes `value`.
   *
   * @throws {TypeError} When the value cannot be expressed in MessagePack.
   */
  encode(value: unknown): Uint8Array {
    // A getter that encodes while we encode gets an encoder of its own.
    if (this.#busy) return new Encoder({ maxDepth: this.#maxDepth }).encode(value);
    this.#busy = true;
    try {
      this.#pos = 0;
      this.#value(value, 0);
      return this.#take();
    } finally {
      this.#busy = false;
    }
  }

  // A copy of what was written; a burst may have grown the buffer, which is
  // not kept for the small messages that follow.
  #take(): Uint8Array {
    const out = this.#buf.slice(0, this.#pos);
    if (this.#buf.length > 1 << 20) this.#reset();
    return out;
  }

  #reset(): void {
    this.#buf = new Uint8Array(4096);
    this.#view = new DataView(this.#buf.buffer);
  }

  #ensure(n: number): void {
    const need = this.#pos + n;
    if (need <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  #value(v: unknown, depth: number): void {
    switch (typeof v) {
      case "number":
        if (Number.isSafeInteger(v) && !(v === 0 && 1 / v < 0)) this.#int(v);
        else this.#float(v);
        return;
      case "string":
        this.#string(v);
        return;
      case "boolean":
        this.#ensure(1);
        this.#buf[this.#pos++] = v ? 0xc3 : 0xc2;
        return;
      case "undefined":
        this.#ensure(1);
        this.#buf[this.#pos++] = 0xc0;
        return;
      case "bigint":
        this.#bigint(v);
        return;
      case "object":
        if (v === null) {
          this.#ensure(1);
          this.#buf[this.#pos++] = 0xc0;
          return;
        }
        if (depth >= this.#maxDepth) {
          throw new TypeError(
            `Cannot encode value: nested deeper than ${this.#maxDepth} levels (or a cycle)`,
          );
        }
        this.#object(v, depth + 1);
        return;
      default:
        throw new TypeError(`Cannot encode a ${typeof v}: not a MessagePack type`);
    }
  }

  #object(v: object, depth: number): void {
    if (Array.isArray(v)) {
      this.#head(v.length, 0x90, 0xdc, 0xdd);
      for (let i = 0; i < v.length; i++) this.#value(v[i], depth);
    } else if (v instanceof Uint8Array) this.#bin(v);
    else if (v instanceof Float) this.#float(v.value);
    else if (v instanceof Map) {
      this.#head(v.size, 0x80, 0xde, 0xdf);
      for (const [key, value] of v) {
        this.#value(key, depth);
        this.#value(value, depth);
      }
    } else if (v instanceof Timestamp) this.#timestamp(v);
    else if (v instanceof Date) this.#timestamp(Timestamp.fromDate(v));
    else if (v instanceof Ext) this.#ext(v.type, v.data);
    else if (v instanceof RawString) this.#strBytes(v.bytes);
    else if (v instanceof ArrayBuffer) this.#bin(new Uint8Array(v));
    else if (ArrayBuffer.isView(v) || v instanceof Set || v instanceof WeakMap) {
      throw new TypeError(`Cannot encode a ${v.constructor.name}: not a MessagePack type`);
    } else this.#record(v as Record<string, unknown>, depth);
  }

  #record(v: Record<string, unknown>, depth: number): void {
    const keys = Object.keys(v);
    let count = 0;
    for (const k of keys) {
      const x = v[k];
      if (x !== undefined && typeof x !== "function") count++;
    }
    this.#head(count, 0x80, 0xde, 0xdf);
    for (const k of keys) {
      const x = v[k];
      if (x === undefined || typeof x === "function") continue;
      this.#string(k);
      this.#value(x, depth);
    }
  }

  // Header of an array (fix 0x90) or a map (fix 0x80).
  #head(n: number, fix: number, b16: number, b32: number): void {
    this.#ensure(5);
    const buf = this.#buf;
    if (n < 16) buf[this.#pos++] = fix | n;
    else if (n < 0x10000) {
      buf[this.#pos] = b16;
      this.#view.setUint16(this.#pos + 1, n);
      this.#pos += 3;
    } else {
      buf[this.#pos] = b32;
      this.#view.setUint32(this.#pos + 1, n);
      this.#pos += 5;
    }
  }

  #int(v: number): void {
    this.#ensure(9);
    const buf = this.#buf;
    const p = this.#pos;
    if (v >= 0) {
      if (v < 0x80) {
        buf[p] = v;
        this.#pos = p + 1;
      } else if (v < 0x100) {
        buf[p] = 0xcc;
        buf[p + 1] = v;
        this.#pos = p + 2;
      } else if (v < 0x10000) {
        buf[p] = 0xcd;
        this.#view.setUint16(p + 1, v);
        this.#pos = p + 3;
      } else if (v < 0x100000000) {
        buf[p] = 0xce;
        this.#view.setUint32(p + 1, v);
        this.#pos = p + 5;
      } else {
        buf[p] = 0xcf;
        this.#view.setUint32(p + 1, Math.floor(v / 0x100000000));
        this.#view.setUint32(p + 5, v >>> 0);
        this.#pos = p + 9;
      }
    } else if (v >= -0x20) {
      buf[p] = v & 0xff;
      this.#pos = p + 1;
    } else if (v >= -0x80) {
      buf[p] = 0xd0;
      buf[p + 1] = v & 0xff;
      this.#pos = p + 2;
    } else if (v >= -0x8000) {
      buf[p] = 0xd1;
      this.#view.setInt16(p + 1, v);
      this.#pos = p + 3;
    } else if (v >= -0x80000000) {
      buf[p] = 0xd2;
      this.#view.setInt32(p + 1, v);
      this.#pos = p + 5;
    } else {
      buf[p] = 0xd3;
      this.#view.setInt32(p + 1, Math.floor(v / 0x100000000));
      this.#view.setUint32(p + 5, v >>> 0);
      this.#pos = p + 9;
    }
  }

  #bigint(v: bigint): void {
    if (v >= -0x1fffffffffffffn && v <= 0x1fffffffffffffn) {
      this.#int(Number(v));
      return;
    }
    this.#ensure(9);
    if (v > 0n && v <= UINT64_MAX) {
      this.#buf[this.#pos] = 0xcf;
      this.#view.setBigUint64(this.#pos + 1, v);
    } else if (v < 0n && v >= INT64_MIN) {
      this.#buf[this.#pos] = 0xd3;
      this.#view.setBigInt64(this.#pos + 1, v);
    } else throw new TypeError(`Cannot encode ${v}: integers are at most 64 bits`);
    this.#pos += 9;
  }

  #float(v: number): void {
    this.#ensure(9);
    this.#buf[this.#pos] = 0xcb;
    this.#view.setFloat64(this.#pos + 1, v);
    this.#pos += 9;
  }

  #string(s: string): void {
    const len = s.length;
    // Short ASCII strings (keys, method names) without TextEncoder's overhead.
    if (len < 32) {
      this.#ensure(1 + len);
      const buf = this.#buf;
      const start = this.#pos;
      let i = 0;
      for (; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[start + 1 + i] = c;
      }
      if (i === len) {
        buf[start] = 0xa0 | len;
        this.#pos = start + 1 + len;
        return;
      }
    }
    // Room for the longest header and the longest UTF-8; the header's size
    // depends on the byte length, known only after encoding.
    this.#ensure(5 + len * 3);
    const start = this.#pos;
    const { written } = textEncoder.encodeInto(s, this.#buf.subarray(start + 5));
    const head = written < 32 ? 1 : written < 0x100 ? 2 : written < 0x10000 ? 3 : 5;
    if (head !== 5) this.#buf.copyWithin(start + head, start + 5, start + 5 + written);
    this.#strHead(start, written);
    this.#pos = start + head + written;
  }

  #strHead(at: number, n: number): void {
    const buf = this.#buf;
    if (n < 32) buf[at] = 0xa0 | n;
    else if (n < 0x100) {
      buf[at] = 0xd9;
      buf[at + 1] = n;
    } else if (n < 0x10000) {
      buf[at] = 0xda;
      this.#view.setUint16(at + 1, n);
    } else {
      buf[at] = 0xdb;
      this.#view.setUint32(at + 1, n);
    }
  }

  #strBytes(bytes: Uint8Array): void {
    const n = bytes.length;
    this.#ensure(5 + n);
    const head = n < 32 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
    this.#strHead(this.#pos, n);
    this.#buf.set(bytes, this.#pos + head);
    this.#pos += head + n;
  }

  #bin(bytes: Uint8Array): void {
    const n = bytes.length;
    this.#ensure(5 + n);
    const buf = this.#buf;
    const p = this.#pos;
    let head: number;
    if (n < 0x100) {
      buf[p] = 0xc4;
      buf[p + 1] = n;
      head = 2;
    } else if (n < 0x10000) {
      buf[p] = 0xc5;
      this.#view.setUint16(p + 1, n);
      head = 3;
    } else {
      buf[p] = 0xc6;
      this.#view.setUint32(p + 1, n);
      head = 5;
    }
    buf.set(bytes, p + head);
    this.#pos = p + head + n;
  }

  #ext(type: number, data: Uint8Array): void {
    const n = data.length;
    this.#ensure(6 + n);
    const buf = this.#buf;
    const p = this.#pos;
    let head: number;
    const fix = n === 1
      ? 0xd4
      : n === 2
      ? 0xd5
      : n === 4
      ? 0xd6
      : n === 8
      ? 0xd7
      : n === 16
      ? 0xd8
      : 0;
    if (fix !== 0) {
      buf[p] = fix;
      head = 1;
    } else if (n < 0x100) {
      buf[p] = 0xc7;
      buf[p + 1] = n;
      head = 2;
    } else if (n < 0x10000) {
      buf[p] = 0xc8;
      this.#view.setUint16(p + 1, n);
      head = 3;
    } else {
      buf[p] = 0xc9;
      this.#view.setUint32(p + 1, n);
      head = 5;
    }
    buf[p + head] = type & 0xff;
    buf.set(data, p + head + 1);
    this.#pos = p + head + 1 + n;
  }

  // The shortest of the three timestamp forms, as the spec and every library pick.
  #timestamp(t: Timestamp): void {
    const sec = t.seconds;
    const ns = t.nanoseconds;
    if (sec >= 0n && sec < 0x400000000n) {
      if (ns === 0 && sec < 0x100000000n) {
        const data = new Uint8Array(4);
        new DataView(data.buffer).setUint32(0, Number(sec));
        this.#ext(-1, data);
      } else {
        const data = new Uint8Array(8);
        new DataView(data.buffer).setBigUint64(0, (BigInt(ns) << 34n) | sec);
        this.#ext(-1, data);
      }
      return;
    }
    const data = new Uint8Array(12);
    const view = new DataView(data.buffer);
    view.setUint32(0, ns);
    view.setBigInt64(4, sec);
    this.#ext(-1, data);
  }
}

const shared = new Encoder();

/**
 * Encodes one value as MessagePack (see the module doc for the mapping).
 *
 * @throws {TypeError} When the value cannot be expressed in MessagePack.
 *
 * @example Usage
 * ```ts
 * import { encodeValue } from "./encode.ts";
 * console.log(encodeValue(2 ** 40)); // Uint8Array(9) [207, 0, 0, 1, 0, 0, 0, 0, 0]
 * ```
 */
export function encodeValue(value: unknown): Uint8Array {
  return shared.encode(value);
}
