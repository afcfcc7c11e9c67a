/**
 * MessagePack-RPC message types, and encoding and decoding of whole messages.
 *
 * - request: `[0, msgid, method, params]`
 * - response: `[1, msgid, error, result]`
 * - notification: `[2, method, params]`
 *
 * @module
 */

import { Packr } from "msgpackr/pack";
import { Unpackr } from "msgpackr/unpack";
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

// useRecords:false keeps output plain MessagePack any peer can read;
// int64AsType:"number" gives numbers, not BigInt, for 64-bit integers.
const packr = new Packr(
  { useRecords: false, int64AsType: "number" } as ConstructorParameters<
    typeof Packr
  >[0],
);
const unpackr = new Unpackr(
  {
    useRecords: false,
    int64AsType: "number",
    mapsAsObjects: true,
    copyBuffers: true, // decoded bin values must not alias the reused read buffer
  } as ConstructorParameters<typeof Unpackr>[0],
);

/** Encodes any value as MessagePack. */
export function encodeValue(value: unknown): Uint8Array {
  return packr.pack(value);
}

/**
 * Decodes one MessagePack value.
 *
 * @throws {ProxyError} `PARSE_ERROR` when the bytes are not one valid value.
 */
export function decodeValue(bytes: Uint8Array): unknown {
  try {
    return unpackr.unpack(bytes);
  } catch (err) {
    throw new ProxyError(
      ErrorCode.PARSE_ERROR,
      `Cannot decode message: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
}

/** Encodes a request. */
export function encodeRequest(msgid: number, method: string, params: unknown[]): Uint8Array {
  return packr.pack([REQUEST, msgid, method, params]);
}

/** Encodes a response carrying a result. */
export function encodeResult(msgid: number, result: unknown): Uint8Array {
  return packr.pack([RESPONSE, msgid, null, result === undefined ? null : result]);
}

/** Encodes a response carrying an error. */
export function encodeError(msgid: number, error: WireError): Uint8Array {
  return packr.pack([RESPONSE, msgid, error, null]);
}

/** Encodes a notification. */
export function encodeNotification(method: string, params: unknown[]): Uint8Array {
  return packr.pack([NOTIFICATION, method, params]);
}

/**
 * Thrown by {@linkcode decodeMessage} for a frame that is not a valid
 * MessagePack-RPC message; carries the msgid when one could be read, so the
 * sender can get an error response.
 */
export class InvalidMessageError extends ProxyError {
  /** The msgid of the offending request, when known. */
  readonly msgid: number | undefined;

  /**
   * @param code `INVALID_REQUEST`, `PARSE_ERROR` or `MESSAGE_TOO_LARGE`.
   * @param message What is wrong.
   * @param msgid The request's msgid, if it could be read.
   */
  constructor(code: string, message: string, msgid?: number) {
    super(code, message);
    this.name = "InvalidMessageError";
    this.msgid = msgid;
  }
}

function isMsgid(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v);
}

/**
 * Checks a decoded value is a MessagePack-RPC message and types it.
 *
 * @throws {InvalidMessageError} `INVALID_REQUEST` with the msgid when known.
 */
export function validateMessage(value: unknown): Message {
  if (!Array.isArray(value)) {
    throw new InvalidMessageError(ErrorCode.INVALID_REQUEST, "Cannot accept message: not an array");
  }
  const [type] = value;
  if (type === REQUEST) {
    const msgid = isMsgid(value[1]) ? value[1] : undefined;
    if (value.length !== 4) {
      throw new InvalidMessageError(
        ErrorCode.INVALID_REQUEST,
        `Cannot accept request: expected 4 elements, got ${value.length}`,
        msgid,
      );
    }
    if (msgid === undefined) {
      throw new InvalidMessageError(
        ErrorCode.INVALID_REQUEST,
        "Cannot accept request: msgid is not an integer",
      );
    }
    if (typeof value[2] !== "string") {
      throw new InvalidMessageError(
        ErrorCode.INVALID_REQUEST,
        "Cannot accept request: method is not a string",
        msgid,
      );
    }
    if (!Array.isArray(value[3])) {
      throw new InvalidMessageError(
        ErrorCode.INVALID_REQUEST,
        "Cannot accept request: params is not an array",
        msgid,
      );
    }
    return { type: REQUEST, msgid, method: value[2], params: value[3] };
  }
  if (type === RESPONSE) {
    if (value.length !== 4) {
      throw new InvalidMessageError(
        ErrorCode.INVALID_REQUEST,
        `Cannot accept response: expected 4 elements, got ${value.length}`,
      );
    }
    if (!isMsgid(value[1])) {
      throw new InvalidMessageError(
        ErrorCode.INVALID_REQUEST,
        "Cannot accept response: msgid is not an integer",
      );
    }
    return { type: RESPONSE, msgid: value[1], error: value[2], result: value[3] };
  }
  if (type === NOTIFICATION) {
    if (value.length !== 3) {
      throw new InvalidMessageError(
        ErrorCode.INVALID_REQUEST,
        `Cannot accept notification: expected 3 elements, got ${value.length}`,
      );
    }
    if (typeof value[1] !== "string") {
      throw new InvalidMessageError(
        ErrorCode.INVALID_REQUEST,
        "Cannot accept notification: method is not a string",
      );
    }
    if (!Array.isArray(value[2])) {
      throw new InvalidMessageError(
        ErrorCode.INVALID_REQUEST,
        "Cannot accept notification: params is not an array",
      );
    }
    return { type: NOTIFICATION, method: value[1], params: value[2] };
  }
  throw new InvalidMessageError(
    ErrorCode.INVALID_REQUEST,
    `Cannot accept message: unknown type tag ${String(type)}`,
  );
}

/**
 * Decodes and validates one whole frame (as returned by `FrameDecoder.next()`).
 *
 * @throws {InvalidMessageError} `PARSE_ERROR` or `INVALID_REQUEST`.
 */
export function decodeMessage(frame: Uint8Array): Message {
  let value: unknown;
  try {
    value = unpackr.unpack(frame);
  } catch (err) {
    throw new InvalidMessageError(
      ErrorCode.PARSE_ERROR,
      `Cannot decode message: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  return validateMessage(value);
}
