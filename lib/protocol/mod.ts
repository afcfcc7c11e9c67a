/**
 * The MessagePack-RPC protocol layer: pure, no I/O.
 *
 * @module
 */
export * from "./errors.ts";
export * from "./frame_decoder.ts";
export * from "./message.ts";
export * from "./envelope.ts";
export * from "./legacy_frame.ts";
export * from "./encode.ts";
export * from "./decode.ts";
export * from "./values.ts";
export * from "./route_key.ts";
export * from "./auth.ts";
