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

/** Type tag of a request. */
export const REQUEST = 0;
/** Type tag of a response. */
export const RESPONSE = 1;
/** Type tag of a notification. */
export const NOTIFICATION = 2;

/** A decoded request. */
export interface RequestMessage {
  type: typeof REQUEST;
  msgid: number;
  method: string;
  params: unknown[];
}

/** A decoded response; exactly one of `error` and `result` is meaningful. */
export interface ResponseMessage {
  type: typeof RESPONSE;
  msgid: number;
  error: unknown;
  result: unknown;
}

/** A decoded notification. */
export interface NotificationMessage {
  type: typeof NOTIFICATION;
  method: string;
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

/** Encodes a request. */
export function encodeRequest(msgid: number, method: string, params: unknown[]): Uint8Array {
  return encodeValue([REQUEST, msgid, method, params]);
}

/**
 * Encodes a response carrying a result.
 *
 * @throws {TypeError} When the result cannot be expressed in MessagePack.
 */
export function encodeResult(msgid: number, result: unknown): Uint8Array {
  return encodeValue([RESPONSE, msgid, null, result === undefined ? null : result]);
}

/**
 * Encodes a response carrying an error, as a map (the default) or as
 * `[code, message]`. A msgid beyond 2^53 (a bigint) is echoed exactly.
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

/** Encodes a notification. */
export function encodeNotification(method: string, params: unknown[]): Uint8Array {
  return encodeValue([NOTIFICATION, method, params]);
}

/**
 * Thrown by {@linkcode decodeMessage} (and `readEnvelope`) for a frame that is
 * not a valid MessagePack-RPC message; carries the msgid when one could be
 * read, so the sender can get an error response.
 */
export class InvalidMessageError extends ProxyError {
  /** The msgid of the offending message, when known (a bigint beyond 2^53). */
  readonly msgid: number | bigint | undefined;

  /**
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
