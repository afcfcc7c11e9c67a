/**
 * MessagePack-RPC message types, and encoding and decoding of whole messages.
 *
 * - request: `[0, msgid, method, params]`
 * - response: `[1, msgid, error, result]`
 * - notification: `[2, method, params]`
 *
 * @module
 */

import { decodeSequence } from "./decode.ts";
import { encodeValue } from "./encode.ts";
import { createEnvelope, readEnvelope } from "./envelope.ts";
import { ErrorCode, ProxyError, type WireError } from "./errors.ts";

/**
 * Type tag of a request.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeMessage, encodeRequest, REQUEST } from "./message.ts";
 * assert.equal(decodeMessage(encodeRequest(1, "ping", [])).type, REQUEST);
 * ```
 */
export const REQUEST = 0;
/**
 * Type tag of a response.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeMessage, encodeResult, RESPONSE } from "./message.ts";
 * assert.equal(decodeMessage(encodeResult(1, "pong")).type, RESPONSE);
 * ```
 */
export const RESPONSE = 1;
/**
 * Type tag of a notification.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeMessage, encodeNotification, NOTIFICATION } from "./message.ts";
 * assert.equal(decodeMessage(encodeNotification("shutdown", [])).type, NOTIFICATION);
 * ```
 */
export const NOTIFICATION = 2;

/** A decoded request. */
export interface RequestMessage {
  /** {@linkcode REQUEST}. */
  type: typeof REQUEST;
  /** The caller's id of the request, echoed in its response. */
  msgid: number;
  /** The method called. */
  method: string;
  /** Its parameters. */
  params: unknown[];
}

/** A decoded response; exactly one of `error` and `result` is meaningful. */
export interface ResponseMessage {
  /** {@linkcode RESPONSE}. */
  type: typeof RESPONSE;
  /** The msgid of the request answered. */
  msgid: number;
  /** The error, or null (see `toWireError` for its shapes). */
  error: unknown;
  /** The result (null when there is an error). */
  result: unknown;
}

/** A decoded notification. */
export interface NotificationMessage {
  /** {@linkcode NOTIFICATION}. */
  type: typeof NOTIFICATION;
  /** The method called. */
  method: string;
  /** Its parameters. */
  params: unknown[];
}

/** Any MessagePack-RPC message. */
export type Message = RequestMessage | ResponseMessage | NotificationMessage;

/**
 * How errors are written in responses:
 * - `map`: `{ code, message, data? }` (the default);
 * - `array`: `[code, message]`, the form Neovim, pynvim and the npm `neovim`
 *   client read.
 */
export type ErrorFormat = "map" | "array";

/** The error formats, for flag validation. */
export const ERROR_FORMATS: readonly ErrorFormat[] = ["map", "array"];

/**
 * Encodes a request.
 *
 * @param msgid The caller's id for the request, echoed in the response.
 * @param method The method to call.
 * @param params Its parameters.
 * @returns The message's bytes.
 * @throws {TypeError} When a param cannot be expressed in MessagePack.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeRequest } from "./message.ts";
 * // [0, 1, "ping", []]
 * assert.deepEqual(encodeRequest(1, "ping", []), new Uint8Array([0x94, 0, 1, 0xa4, 0x70, 0x69, 0x6e, 0x67, 0x90]));
 * ```
 */
export function encodeRequest(msgid: number, method: string, params: unknown[]): Uint8Array {
  return encodeValue([REQUEST, msgid, method, params]);
}

/**
 * Encodes a response carrying a result.
 *
 * @throws {TypeError} When the result cannot be expressed in MessagePack.
 *
 * @param msgid The msgid of the request answered.
 * @param result The result (`undefined` is sent as nil).
 * @returns The message's bytes.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeMessage, encodeResult } from "./message.ts";
 * assert.deepEqual(decodeMessage(encodeResult(9, [1, 2])), {
 *   type: 1,
 *   msgid: 9,
 *   error: null,
 *   result: [1, 2],
 * });
 * ```
 */
export function encodeResult(msgid: number, result: unknown): Uint8Array {
  return encodeValue([RESPONSE, msgid, null, result === undefined ? null : result]);
}

/**
 * Encodes a response carrying an error, as a map (the default) or as
 * `[code, message]`. A msgid beyond 2^53 (a bigint) is echoed exactly.
 *
 * @param msgid The msgid of the request answered.
 * @param error The error.
 * @param format `map` or `array`. @default {"map"}
 * @returns The message's bytes.
 *
 * @example Both formats
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeMessage, encodeError } from "./message.ts";
 * const error = { code: "TIMEOUT", message: "Cannot answer in time" };
 * assert.deepEqual(decodeMessage(encodeError(3, error)).type === 1 && decodeMessage(encodeError(3, error)), {
 *   type: 1,
 *   msgid: 3,
 *   error,
 *   result: null,
 * });
 * const array = decodeMessage(encodeError(3, error, "array"));
 * assert.deepEqual(array.type === 1 && array.error, ["TIMEOUT", "Cannot answer in time"]);
 * ```
 */
export function encodeError(
  msgid: number | bigint,
  error: WireError,
  format: ErrorFormat = "map",
): Uint8Array {
  const wire = format === "array" ? [error.code, error.message] : error;
  try {
    return encodeValue([RESPONSE, msgid, wire, null]);
  } catch {
    // `data` that cannot be encoded must not cost the answer.
    return encodeValue([RESPONSE, msgid, { code: error.code, message: error.message }, null]);
  }
}

/**
 * Encodes a notification.
 *
 * @param method The method.
 * @param params Its parameters.
 * @returns The message's bytes.
 * @throws {TypeError} When a param cannot be expressed in MessagePack.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeMessage, encodeNotification } from "./message.ts";
 * assert.deepEqual(decodeMessage(encodeNotification("log", ["hi"])), {
 *   type: 2,
 *   method: "log",
 *   params: ["hi"],
 * });
 * ```
 */
export function encodeNotification(method: string, params: unknown[]): Uint8Array {
  return encodeValue([NOTIFICATION, method, params]);
}

/**
 * Thrown by {@linkcode decodeMessage} (and `readEnvelope`) for a frame that is
 * not a valid MessagePack-RPC message; carries the msgid when one could be
 * read, so the sender can get an error response.
 *
 * @example A request whose method is not a string
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeMessage, InvalidMessageError } from "./message.ts";
 * import { encodeValue } from "./encode.ts";
 * const err = (() => {
 *   try {
 *     decodeMessage(encodeValue([0, 5, 42, []]));
 *   } catch (e) {
 *     return e;
 *   }
 * })();
 * assert.ok(err instanceof InvalidMessageError);
 * assert.equal(err.code, "INVALID_REQUEST");
 * assert.equal(err.msgid, 5); // so the sender can be answered
 * ```
 */
export class InvalidMessageError extends ProxyError {
  /** The msgid of the offending message, when known (a bigint beyond 2^53). */
  readonly msgid: number | bigint | undefined;

  /**
   * Creates the error.
   *
   * @param code `INVALID_REQUEST`, `PARSE_ERROR` or `MESSAGE_TOO_LARGE`.
   * @param message What is wrong.
   * @param msgid The message's msgid, if it could be read.
   */
  constructor(code: string, message: string, msgid?: number | bigint) {
    super(code, message);
    this.name = "InvalidMessageError";
    this.msgid = msgid;
  }
}

/** Options of {@linkcode decodeMessage}. */
export interface DecodeMessageOptions {
  /** Deepest nesting accepted in params, results and errors. @default {512} */
  maxDepth?: number;
}

const envelope = createEnvelope();

/**
 * Decodes and validates one whole frame (as returned by `FrameDecoder.next()`).
 * The envelope is checked first (see `readEnvelope` for the msgid rule), then
 * the body is decoded.
 *
 * @throws {InvalidMessageError} `INVALID_REQUEST` for a bad envelope;
 * `PARSE_ERROR` with the msgid for a body that cannot be decoded (e.g. nested
 * deeper than `maxDepth`).
 *
 * @param frame One whole message.
 * @param options Nesting limit.
 * @returns The message.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeMessage, encodeRequest } from "./message.ts";
 * const message = decodeMessage(encodeRequest(7, "echo", [2n ** 63n - 1n]));
 * assert.deepEqual(message, { type: 0, msgid: 7, method: "echo", params: [2n ** 63n - 1n] });
 * ```
 */
export function decodeMessage(frame: Uint8Array, options: DecodeMessageOptions = {}): Message {
  if (frame.length === 0) {
    throw new InvalidMessageError(ErrorCode.PARSE_ERROR, "Cannot decode message: no bytes");
  }
  const env = readEnvelope(frame, envelope);
  const { type, msgid, method, body } = env;
  let parts: unknown[];
  try {
    parts = decodeSequence(frame, type === RESPONSE ? 2 : 1, {
      start: body,
      ...(options.maxDepth === undefined ? {} : { maxDepth: options.maxDepth }),
    });
  } catch (err) {
    throw new InvalidMessageError(
      ErrorCode.PARSE_ERROR,
      (err as Error).message,
      type === NOTIFICATION ? undefined : msgid,
    );
  }
  if (type === REQUEST) return { type, msgid, method, params: parts[0] as unknown[] };
  if (type === RESPONSE) return { type, msgid, error: parts[0], result: parts[1] };
  return { type: NOTIFICATION, method, params: parts[0] as unknown[] };
}
