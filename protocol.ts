/**
 * The MessagePack-RPC codec, pure and without I/O: values in and out exactly
 * as MessagePack has them (integers beyond 2^53 as `bigint`, whole floats as
 * {@linkcode Float}, timestamps to the nanosecond as {@linkcode Timestamp},
 * other extensions as {@linkcode Ext}), messages, the stream framer, and the
 * error codes. Runs on Deno and on Node.
 *
 * @example Round trip of a request
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeMessage, encodeRequest, Float, REQUEST } from "./protocol.ts";
 *
 * const bytes = encodeRequest(7, "echo", [2n ** 63n - 1n, new Float(1)]);
 * const message = decodeMessage(bytes);
 * assert.equal(message.type, REQUEST);
 * assert.deepEqual(message.type === REQUEST && message.params, [2n ** 63n - 1n, new Float(1)]);
 * ```
 *
 * @module
 */

export { type DecodeOptions, decodeSequence, decodeValue } from "./lib/protocol/decode.ts";
export { DEFAULT_MAX_DEPTH, encodeValue } from "./lib/protocol/encode.ts";
export {
  ErrorCode,
  ProxyError,
  type ProxyErrorOptions,
  RemoteError,
  toWireError,
  type WireError,
} from "./lib/protocol/errors.ts";
export {
  DEFAULT_MAX_MESSAGE_SIZE,
  FrameDecoder,
  type FrameDecoderOptions,
} from "./lib/protocol/frame_decoder.ts";
export type { LegacyFrame, LegacyHeader } from "./lib/protocol/legacy_frame.ts";
export {
  decodeMessage,
  type DecodeMessageOptions,
  encodeError,
  encodeNotification,
  encodeRequest,
  encodeResult,
  type ErrorFormat,
  InvalidMessageError,
  type Message,
  NOTIFICATION,
  type NotificationMessage,
  REQUEST,
  type RequestMessage,
  RESPONSE,
  type ResponseMessage,
} from "./lib/protocol/message.ts";
export { Ext, Float, RawString, Timestamp } from "./lib/protocol/values.ts";
