/**
 * MessagePack values that have no exact JavaScript counterpart, so that
 * decoding and encoding again gives back the same value of the same type:
 *
 * - {@linkcode Float}: a float whose value is a whole number (`1.0`), which a
 *   plain JS number would send back as the integer `1`;
 * - {@linkcode Timestamp}: the timestamp extension (type -1) with its
 *   nanoseconds, which a `Date` would round to milliseconds;
 * - {@linkcode Ext}: any other extension type, carried as its type and bytes;
 * - {@linkcode RawString}: a str whose bytes are not valid UTF-8 (old
 *   MessagePack "raw"), which a JS string would change.
 *
 * Integers beyond 2^53 decode as `bigint`; maps with a key that is not a
 * string decode as `Map`.
 *
 * @module
 */

/**
 * A MessagePack float. The decoder returns one only for floats whose value is
 * a whole number (other floats are plain numbers, which encode as floats);
 * return one from a handler to send a whole number as a float.
 *
 * @example Usage
 * ```ts
 * import { Float } from "./values.ts";
 * const f = new Float(2);
 * console.log(f.value, Number(f) + 1, JSON.stringify({ f })); // 2 3 {"f":2}
 * ```
 */
export class Float {
  /** The value. */
  readonly value: number;

  /**
   * Wraps a number so it is written as a float.
   *
   * @param value Any number.
   */
  constructor(value: number) {
    this.value = value;
  }

  /** The number, so arithmetic and comparisons work. */
  valueOf(): number {
    return this.value;
  }

  /** The number, for `JSON.stringify`. */
  toJSON(): number {
    return this.value;
  }

  /** The number as text, with `.0` for a whole number. */
  toString(): string {
    return Number.isInteger(this.value) ? this.value.toFixed(1) : String(this.value);
  }
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * The MessagePack timestamp (extension type -1): seconds since the Unix epoch
 * (a signed 64-bit integer) and nanoseconds (0 to 999,999,999). Encoded in
 * the shortest of the 32-, 64- and 96-bit forms, as every MessagePack library
 * does.
 *
 * @example Usage
 * ```ts
 * import { Timestamp } from "./values.ts";
 * const t = new Timestamp(1, 5);
 * console.log(t.seconds, t.nanoseconds, t.toDate().toISOString()); // 1n 5 1970-01-01T00:00:01.000Z
 * ```
 */
export class Timestamp {
  /** Seconds since 1970-01-01T00:00:00Z. */
  readonly seconds: bigint;
  /** Nanoseconds within the second. */
  readonly nanoseconds: number;

  /**
   * Creates a timestamp.
   *
   * @param seconds Seconds since the epoch (a safe integer or a bigint).
   * @param nanoseconds 0 to 999,999,999. @default {0}
   * @throws {RangeError} When either is out of range.
   */
  constructor(seconds: number | bigint, nanoseconds = 0) {
    if (typeof seconds === "number" && !Number.isSafeInteger(seconds)) {
      throw new RangeError(`Cannot create timestamp: seconds must be an integer, got ${seconds}`);
    }
    const s = BigInt(seconds);
    if (s < INT64_MIN || s > INT64_MAX) {
      throw new RangeError(`Cannot create timestamp: seconds ${s} beyond 64 bits`);
    }
    if (!Number.isInteger(nanoseconds) || nanoseconds < 0 || nanoseconds > 999_999_999) {
      throw new RangeError(
        `Cannot create timestamp: nanoseconds must be from 0 to 999999999, got ${nanoseconds}`,
      );
    }
    this.seconds = s;
    this.nanoseconds = nanoseconds;
  }

  /** The timestamp of a `Date` (millisecond precision). */
  static fromDate(date: Date): Timestamp {
    const ms = date.getTime();
    if (!Number.isFinite(ms)) throw new RangeError("Cannot create timestamp: invalid Date");
    const seconds = Math.floor(ms / 1000);
    return new Timestamp(seconds, (ms - seconds * 1000) * 1_000_000);
  }

  /** As a `Date` (rounded down to the millisecond). */
  toDate(): Date {
    return new Date(Number(this.seconds) * 1000 + Math.floor(this.nanoseconds / 1_000_000));
  }

  /** ISO 8601 with nanoseconds when there are any, e.g. `1970-01-01T00:00:01.000000005Z`. */
  toString(): string {
    const iso = this.toDate().toISOString();
    if (this.nanoseconds % 1_000_000 === 0) return iso;
    return `${iso.slice(0, -5)}.${String(this.nanoseconds).padStart(9, "0")}Z`;
  }

  /** `{ seconds, nanoseconds }` for `JSON.stringify` (seconds as a number when safe). */
  toJSON(): { seconds: number | string; nanoseconds: number } {
    const n = Number(this.seconds);
    return {
      seconds: Number.isSafeInteger(n) ? n : this.seconds.toString(),
      nanoseconds: this.nanoseconds,
    };
  }
}

/**
 * An extension value of a type this codec does not interpret: carried and
 * encoded again as the same type and bytes.
 *
 * @example Usage
 * ```ts
 * import { Ext } from "./values.ts";
 * const e = new Ext(42, new Uint8Array([1, 2]));
 * console.log(e.type, e.data); // 42 Uint8Array(2) [ 1, 2 ]
 * ```
 */
export class Ext {
  /** The extension type, -128 to 127. */
  readonly type: number;
  /** Its payload. */
  readonly data: Uint8Array;

  /**
   * Creates an extension value.
   *
   * @param type -128 to 127 (negative types are reserved by the spec).
   * @param data The payload, at most 2^32-1 bytes.
   * @throws {RangeError} When the type is out of range.
   */
  constructor(type: number, data: Uint8Array) {
    if (!Number.isInteger(type) || type < -128 || type > 127) {
      throw new RangeError(`Cannot create extension: type must be from -128 to 127, got ${type}`);
    }
    this.type = type;
    this.data = data;
  }

  /** `{ ext, data }` for `JSON.stringify`, the bytes as an array of numbers. */
  toJSON(): { ext: number; data: number[] } {
    return { ext: this.type, data: Array.from(this.data) };
  }
}

/**
 * A MessagePack str whose bytes are not valid UTF-8 (old "raw" data, or
 * another encoding): kept as bytes so it is sent back unchanged.
 *
 * @example Usage
 * ```ts
 * import { RawString } from "./values.ts";
 * const s = new RawString(new Uint8Array([0x61, 0xff]));
 * console.log(s.toString()); // "a\uFFFD"
 * ```
 */
export class RawString {
  /** The str's bytes. */
  readonly bytes: Uint8Array;

  /**
   * Keeps a str's bytes as they are.
   *
   * @param bytes The bytes of the str.
   */
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /** The bytes read as UTF-8, invalid sequences replaced by U+FFFD. */
  toString(): string {
    return new TextDecoder().decode(this.bytes);
  }

  /** The lossy text, for `JSON.stringify`. */
  toJSON(): string {
    return this.toString();
  }
}
